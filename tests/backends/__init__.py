"""Tests of bastion.backends."""

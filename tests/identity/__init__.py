"""Tests of identity: directory, passwords, lockout, API keys, tokens, JWTs, agents."""

"""Bastion's own authentication endpoints: OAuth token and revocation, password login and
logout, and the ``/.well-known`` documents describing the tokens bastion issues."""

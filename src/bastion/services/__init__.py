"""Use cases: issuing keys, authenticating, deciding, recording audit events.

Services depend on the storage protocols in `bastion.backends.protocols`, never on a backend.
"""

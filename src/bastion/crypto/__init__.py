"""Safe cryptographic recipes: keyed hashes and random credentials. Primitives live in _hazmat."""

"""Redis backends: the revocation broadcast (the only package besides ratelimit using redis)."""

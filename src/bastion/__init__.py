"""Bastion: a self-hosted security control plane and identity-aware gateway."""

from bastion.errors import (
    AuthenticationError,
    AuthorizationError,
    BastionError,
    ConfigError,
    StorageError,
)

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "BastionError",
    "ConfigError",
    "StorageError",
    "__version__",
]

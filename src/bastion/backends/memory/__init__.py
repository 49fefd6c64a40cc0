"""The in-memory backend: the storage protocols over dicts, for tests and trials."""

from __future__ import annotations

from bastion.backends.memory.storage import MemoryStorage, MemoryUnitOfWork

__all__ = ["MemoryStorage", "MemoryUnitOfWork"]

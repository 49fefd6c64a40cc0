"""Pure domain logic: no I/O, framework or database imports (checked by import-linter)."""

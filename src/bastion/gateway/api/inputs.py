"""`Body`: what every admin API request body model derives from.

A key the model does not know is an error (``disabld: true`` would otherwise answer ``200`` and
change nothing: the operator believes a user disabled who is not), and a flag is a JSON
boolean only (`Flag`; pydantic would read ``"yes"``, ``"off"`` or ``1`` as one). No text
in a body holds a NUL character.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, field_validator
from pydantic_core import PydanticCustomError

Flag = StrictBool


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        """No text holds a NUL character: PostgreSQL can neither store nor compare it, and no
        name, permission or display text needs one (``400``, naming the field)."""
        if _holds_nul(value):
            raise PydanticCustomError("nul_character", "must not hold a NUL character")
        return value

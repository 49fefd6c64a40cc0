"""`Body`: what every admin API request body model derives from.

A key the model does not know is an error (``disabld: true`` would otherwise answer ``200`` and
change nothing: the operator believes a user disabled who is not), and a flag is a JSON
boolean only (`Flag`; pydantic would read ``"yes"``, ``"off"`` or ``1`` as one).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictBool

Flag = StrictBool


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

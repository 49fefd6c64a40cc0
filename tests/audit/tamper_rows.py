"""More writes of the attacker in `tests.audit.tamper`: checkpoints removed below a seq (the
oldest events deleted as if by retention), a timestamp column moved, or re-spelled."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bastion.backends.memory.audit import StoredEvent
from bastion.backends.protocols import Storage
from bastion.backends.sql.audit_raw import sqlite_timestamp

from .tamper import Tamper


class RowTamper(Tamper):
    def __init__(self, storage: Storage, url: str) -> None:
        super().__init__(storage, url)
        self._sqlite = url.startswith("sqlite")

    def delete_checkpoints_before(self, seq: int) -> None:
        if self._memory is not None:
            log = self._memory._log
            log.checkpoints = {s: c for s, c in log.checkpoints.items() if s >= seq}
            return
        self._sql("DELETE FROM audit_checkpoints WHERE seq < :seq", seq=seq)

    def set_timestamp(self, seq: int, moment: datetime) -> None:
        if self._memory is not None:
            log = self._memory._log
            for index, stored in enumerate(log.events):
                if stored.head.seq == seq:
                    head = replace(stored.head, timestamp=moment)
                    log.events[index] = StoredEvent(
                        head, stored.actor_id, stored.resource_key, stored.body
                    )
            return
        value = sqlite_timestamp(moment) if self._sqlite else moment
        self._sql("UPDATE audit_events SET timestamp = :t WHERE seq = :seq", t=value, seq=seq)

    def set_timestamp_text(self, seq: int, text: str) -> None:
        """SQLite only, where the column is text: any spelling, the same instant or not."""
        assert self._sqlite
        self._sql("UPDATE audit_events SET timestamp = :t WHERE seq = :seq", t=text, seq=seq)

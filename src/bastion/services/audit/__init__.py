"""Recording audit events: built, masked, chained, sealed by signed checkpoints and stored,
either inside the caller's transaction (`append_events`) or through a group-commit writer
that batches per-request events into few transactions (`GroupCommitAuditWriter`).
"""

from bastion.services.audit.events import append_events, build_event, new_event_id
from bastion.services.audit.recorder import (
    AuditRecorder,
    NullOutbox,
    Outbox,
    RecordingAuditStore,
    RecordingStorage,
    SealPolicy,
)
from bastion.services.audit.writer import (
    AuditSink,
    BestEffortAuditSink,
    GroupCommitAuditWriter,
    NullAuditSink,
)

__all__ = [
    "AuditRecorder",
    "AuditSink",
    "BestEffortAuditSink",
    "GroupCommitAuditWriter",
    "NullAuditSink",
    "NullOutbox",
    "Outbox",
    "RecordingAuditStore",
    "RecordingStorage",
    "SealPolicy",
    "append_events",
    "build_event",
    "new_event_id",
]

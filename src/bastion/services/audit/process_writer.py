"""The per-request audit sink of ``bastion serve``: events levelled, masked and encoded in the
request's task, then chained and stored by a writer process of their own.

Why a process: a writer thread shares the interpreter lock with the event loop, and every
database call of a batch (begin, head, insert, commit) hands the lock back and forth with the
requests being served. On a 2-core machine that hand-over cost more than the writing itself
(futex wake-ups and context switches were a quarter of the serving process's CPU). In its own
process the writer works beside the event loop instead of against it.

Nothing changes for a request: `record` still returns only once the batch holding its event
has committed, and a batch the writer cannot store (or a writer that dies) fails its requests
with `AuditUnavailableError` (HTTP 503); the next batch starts a new writer process.

Wire format, on the child's stdin and stdout: frames of a 4-byte big-endian length and a
pickle (both ends are bastion, on private pipes). Parent to child: the setup (what the
child's builder needs: the loaded configuration), then one frame a batch, a list of
`to_wire` tuples. Child to parent: ``("ready",)`` once, then ``("ok", count)`` or
``("error", code)`` a batch. Every event crosses already masked, strings included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import struct
from collections.abc import Sequence
from datetime import datetime
from typing import IO, Any

from bastion.backends.protocols import Storage
from bastion.core.audit import PreparedEvent
from bastion.core.masking import mask_value
from bastion.core.model import AuditEvent
from bastion.errors import AuditUnavailableError, BastionError
from bastion.services.audit.recorder import append_prepared_to
from bastion.services.audit.writer import GroupCommitAuditWriter

log = logging.getLogger("bastion.audit")

_LENGTH = struct.Struct(">I")
WireEvent = tuple[
    str,  # event id
    datetime,
    str,  # tenant
    str,  # action
    str,  # outcome
    dict[str, Any],  # actor, masked
    dict[str, Any],  # resource, masked
    dict[str, Any],  # details, masked
    dict[str, Any],  # request, masked
    bool,  # simple
    tuple[str, str, str, str] | None,  # encoded around the chain values
]


def frame(payload: object) -> bytes:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def write_frame(stream: IO[bytes], payload: object) -> None:
    stream.write(frame(payload))
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """The next frame's payload, or None at the end of the stream."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(header)
    data = stream.read(length)
    if len(data) < length:
        return None
    return pickle.loads(data)  # noqa: S301 - our own parent process, on a private pipe


async def read_frame_async(stream: asyncio.StreamReader) -> Any:
    (length,) = _LENGTH.unpack(await stream.readexactly(_LENGTH.size))
    return pickle.loads(await stream.readexactly(length))  # noqa: S301 - our own child


def to_wire(item: PreparedEvent) -> WireEvent:
    """What crosses to the writer. An event the fast encoding left out (a float, non-ASCII,
    a credential-like string) is masked strings and all here, so nothing unmasked leaves."""
    source = item.source
    parts = (item.actor, item.resource, item.details, item.request)
    if item.encoded is None:
        parts = tuple(mask_value(part) for part in parts)
    return (
        source.event_id,
        source.timestamp,
        source.tenant,
        source.action,
        source.outcome,
        *parts,
        item.simple,
        item.encoded,
    )


def from_wire(row: WireEvent) -> PreparedEvent:
    """The prepared event again; its ``source`` holds the masked parts (the parent applied
    the field rules already, so they are not applied twice)."""
    event_id, timestamp, tenant, action, outcome, actor, resource, details, request = row[:9]
    source = AuditEvent(
        event_id, timestamp, tenant, action, outcome, actor, resource, details, request
    )
    return PreparedEvent(source, actor, resource, details, request, row[9], None, row[10])


def serve_batches(storage: Storage, reader: IO[bytes], writer: IO[bytes]) -> None:
    """The writer process's loop: a batch in, its outcome out, until the parent closes the
    pipe. A batch that fails is answered ``error`` and the loop goes on: the next one may
    succeed (a busy or briefly unwritable database)."""
    while (batch := read_frame(reader)) is not None:
        try:
            with storage.transaction() as tx:
                append_prepared_to(tx, [from_wire(row) for row in batch])
        except Exception as exc:
            code = exc.code if isinstance(exc, BastionError) else type(exc).__name__
            log.error("audit batch of %d events not written: %s", len(batch), code)
            write_frame(writer, ("error", code))
        else:
            write_frame(writer, ("ok", len(batch)))


class ProcessAuditWriter(GroupCommitAuditWriter):
    """`GroupCommitAuditWriter` whose batches are chained and stored by a child process.

    ``command`` starts the child (`bastion.audit_process`); ``setup`` is sent to it first.
    Events are prepared and checkpoints sealed on idle in this process, as the base does.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        command: Sequence[str],
        setup: object,
        max_batch: int = 5000,
        max_queue: int = 20_000,
        start_timeout: float = 60.0,
        batch_timeout: float = 120.0,
    ) -> None:
        super().__init__(storage, max_batch=max_batch, max_queue=max_queue)
        self._command = tuple(command)
        self._setup = setup
        self._start_timeout = start_timeout
        self._batch_timeout = batch_timeout
        self._child: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        await super().start()
        try:
            await self._spawn()
        except AuditUnavailableError:
            await super().stop()
            raise

    async def stop(self) -> None:
        await super().stop()  # every queued event written (or failed)
        child, self._child = self._child, None
        if child is None:
            return
        if child.stdin is not None:
            child.stdin.close()  # end of stream: the child finishes and exits
        try:
            await asyncio.wait_for(child.wait(), timeout=10)
        except TimeoutError:
            _kill(child)
            await child.wait()

    def _begin_write(self, items: list[PreparedEvent]) -> asyncio.Future[None]:
        return asyncio.ensure_future(self._write_batch(frame([to_wire(i) for i in items])))

    async def _write_batch(self, payload: bytes) -> None:
        try:
            child = self._child
            if child is None or child.returncode is not None:
                child = await self._spawn()
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write(payload)
            await child.stdin.drain()
            reply = await asyncio.wait_for(read_frame_async(child.stdout), self._batch_timeout)
        except AuditUnavailableError:
            raise
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError, pickle.PickleError):
            # The child died or hung mid-batch: whether the batch committed is unknown, so its
            # requests are refused; the next batch starts a new writer.
            self._discard()
            raise AuditUnavailableError("the audit writer process failed") from None
        except BaseException:
            self._discard()  # cancelled mid-batch: the pipe is out of step with the child
            raise
        if not (isinstance(reply, tuple) and reply[:1] == ("ok",)):
            raise AuditUnavailableError("the audit trail could not be written")

    async def _spawn(self) -> asyncio.subprocess.Process:
        """Start the child and wait until it reports ready; `AuditUnavailableError` if not."""
        self._discard()
        try:
            child = await asyncio.create_subprocess_exec(
                *self._command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise AuditUnavailableError(
                f"the audit writer process did not start ({exc.strerror})"
            ) from None
        assert child.stdin is not None and child.stdout is not None
        try:
            child.stdin.write(frame(self._setup))
            await child.stdin.drain()
            reply = await asyncio.wait_for(read_frame_async(child.stdout), self._start_timeout)
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError):
            reply = ("error", "exited")
        except BaseException:
            _kill(child)  # cancelled while it started: leave no writer behind
            raise
        if reply != ("ready",):
            _kill(child)
            await child.wait()
            cause = reply[1] if isinstance(reply, tuple) and len(reply) == 2 else "no answer"
            raise AuditUnavailableError(f"the audit writer process did not start ({cause})")
        self._child = child
        return child

    def _discard(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            _kill(child)


def _kill(child: asyncio.subprocess.Process) -> None:
    if child.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            child.kill()

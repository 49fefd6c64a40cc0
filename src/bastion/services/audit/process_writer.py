"""The per-request audit sink of ``bastion serve``: events levelled, masked and encoded in the
request's task, then chained and stored by a writer process of their own.

Why a process: a writer thread shares the interpreter lock with the event loop, and every
database call of a batch (begin, head, insert, commit) hands the lock back and forth with the
requests being served. On a 2-core machine that hand-over cost more than the writing itself
(futex wake-ups and context switches were a quarter of the serving process's CPU). In its own
process the writer works beside the event loop instead of against it.

Nothing changes for a request: `record` still returns only once the batch holding its event
has committed, and a batch the writer cannot store (or a writer that dies) fails its requests
with `AuditUnavailableError` (HTTP 503); the next batch starts a new writer process. A writer
that dies with two batches under way fails both.

Wire format, on the child's stdin and stdout: frames of a 4-byte big-endian length and a
pickle (both ends are bastion, on private pipes). Parent to child: the setup (what the
child's builder needs: the loaded configuration), then one frame a batch, a list of
`to_wire` tuples. Child to parent: ``("ready",)`` once, then a batch's outcome, in the order
the batches came: ``("ok", count)`` (all stored), ``("partial", positions)`` (all but the
events at those positions, see `store_batch`) or ``("error", code)`` (none). Every event
crosses already masked, strings included.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import pickle
import struct
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import IO, Any

from bastion.backends.protocols import Storage
from bastion.core.audit import PreparedEvent
from bastion.core.masking import mask_value
from bastion.core.model import AuditEvent
from bastion.errors import AuditUnavailableError
from bastion.services.audit.batches import UNWRITTEN, error_code, store_batch
from bastion.services.audit.writer import GroupCommitAuditWriter

log = logging.getLogger("bastion.audit")

_LENGTH = struct.Struct(">I")
_PIPE_BYTES = 1 << 20
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
            refused = store_batch(storage, [from_wire(row) for row in batch])
        except Exception as exc:
            code = error_code(exc)
            log.error("audit batch of %d events not written: %s", len(batch), code)
            write_frame(writer, ("error", code))
        else:
            write_frame(writer, ("partial", refused) if refused else ("ok", len(batch)))


class ProcessAuditWriter(GroupCommitAuditWriter):
    """`GroupCommitAuditWriter` whose batches are chained and stored by a child process.

    ``command`` starts the child (`bastion.audit_process`); ``setup`` is sent to it first.
    Events are prepared and checkpoints sealed on idle in this process, as the base does.

    Two batches may be under way at once: the child stores one while the next waits in the
    pipe, and a batch leaves as soon as ``split_at`` events are queued. The child answers
    batches in the order they arrive; one task reads its answers and settles each batch's
    wait in that order.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        command: Sequence[str],
        setup: object,
        max_batch: int = 5000,
        max_queue: int = 20_000,
        split_at: int = 500,
        start_timeout: float = 60.0,
        batch_timeout: float = 120.0,
    ) -> None:
        super().__init__(
            storage,
            max_batch=max_batch,
            max_queue=max_queue,
            max_in_flight=2,
            split_at=split_at,
        )
        self._command = tuple(command)
        self._setup = setup
        self._start_timeout = start_timeout
        self._batch_timeout = batch_timeout
        self._child: _Child | None = None
        self._sending = asyncio.Lock()
        self._spawning = 0  # batches waiting for a writer to start
        self._reaping: set[asyncio.Task[None]] = set()  # killed writers not yet waited for

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
        if child is not None:
            await child.close()
        if self._reaping:
            await asyncio.gather(*self._reaping)

    def _begin_write(self, items: list[PreparedEvent]) -> asyncio.Future[Sequence[int]]:
        payload = frame([to_wire(i) for i in items])
        child = self._child
        if child is not None and child.alive() and not self._spawning:
            # Sent now, not on a later turn of the loop: the child stores it while this
            # process goes on preparing the next batch.
            return asyncio.ensure_future(self._outcome(child, child.send(payload)))
        self._spawning += 1
        return asyncio.ensure_future(self._send_after_spawn(payload))

    async def _send_after_spawn(self, payload: bytes) -> Sequence[int]:
        """Start a writer if none runs, then send; batches started meanwhile queue behind
        this one (the lock is first come, first served), so they keep their order."""
        try:
            async with self._sending:
                child = self._child
                if child is None or not child.alive():
                    child = await self._spawn()
                answer = child.send(payload)
        finally:
            self._spawning -= 1
        return await self._outcome(child, answer)

    async def _outcome(self, child: _Child, answer: asyncio.Future[Any]) -> Sequence[int]:
        """Wait for the child's answer to one batch: the positions of the events it could not
        store (`AuditUnavailableError` when it stored none)."""
        try:
            await child.drain()
            reply = await asyncio.wait_for(answer, self._batch_timeout)
        except (OSError, EOFError, TimeoutError):  # the reader turns a bad answer into EOFError
            # The child died or hung mid-batch: whether the batch committed is unknown, so its
            # requests are refused; the next batch starts a new writer.
            self._discard(child)
            raise AuditUnavailableError("the audit writer process failed") from None
        except BaseException:
            self._discard(child)  # cancelled mid-batch: the pipe is out of step with the child
            raise
        match reply:
            case ("ok", int()):
                return ()
            case ("partial", [*positions]) if all(isinstance(p, int) for p in positions):
                return positions
        raise AuditUnavailableError(UNWRITTEN)

    async def _spawn(self) -> _Child:
        """Start the child and wait until it reports ready; `AuditUnavailableError` if not."""
        self._discard(self._child)
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise AuditUnavailableError(
                f"the audit writer process did not start ({exc.strerror})"
            ) from None
        assert process.stdin is not None and process.stdout is not None
        _widen_pipe(process.stdin)
        try:
            process.stdin.write(frame(self._setup))
            await process.stdin.drain()
            reply = await asyncio.wait_for(read_frame_async(process.stdout), self._start_timeout)
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError):
            reply = ("error", "exited")
        except BaseException:
            _kill(process)  # cancelled while it started: leave no writer behind
            raise
        if reply != ("ready",):
            _kill(process)
            await process.wait()
            cause = reply[1] if isinstance(reply, tuple) and len(reply) == 2 else "no answer"
            raise AuditUnavailableError(f"the audit writer process did not start ({cause})")
        self._child = _Child(process)
        return self._child

    def _discard(self, child: _Child | None) -> None:
        """Kill ``child``: every batch still waiting for it fails. The next batch starts a
        new writer if it was the current one."""
        if child is None:
            return
        if child is self._child:
            self._child = None
        if child.kill():
            reaping = asyncio.ensure_future(child.ended())
            self._reaping.add(reaping)
            reaping.add_done_callback(self._reaping.discard)


class _Child:
    """A running writer process and the answers it owes, oldest first."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self._process = process
        self._stdin = process.stdin
        self._owed: deque[asyncio.Future[Any]] = deque()
        self._failed = False
        self._killed = False
        self._reader = asyncio.ensure_future(self._read_answers(process.stdout))

    @property
    def pid(self) -> int:
        return self._process.pid

    def alive(self) -> bool:
        return not self._failed and self._process.returncode is None

    def send(self, payload: bytes) -> asyncio.Future[Any]:
        """Write one batch; the future is the child's answer to it."""
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._owed.append(answer)
        self._stdin.write(payload)
        return answer

    async def drain(self) -> None:
        await self._stdin.drain()

    async def _read_answers(self, stdout: asyncio.StreamReader) -> None:
        try:
            while True:
                reply = await read_frame_async(stdout)
                if not self._owed:
                    break  # an answer nobody asked for: out of step, stop trusting it
                answer = self._owed.popleft()
                if not answer.done():  # its batch may have timed out already
                    answer.set_result(reply)
        except (OSError, EOFError):  # IncompleteReadError is an EOFError
            pass  # the child ended (or was killed)
        except Exception as exc:  # an answer that does not decode: out of step
            log.error("the audit writer process's answer is unreadable: %s", type(exc).__name__)
        self._failed = True
        while self._owed:
            answer = self._owed.popleft()
            if not answer.done():
                answer.set_exception(EOFError("the audit writer process ended"))

    def kill(self) -> bool:
        """Kill the process; False if this was already done."""
        if self._killed:
            return False
        self._killed = self._failed = True
        _kill(self._process)
        return True

    async def ended(self) -> None:
        """Once the process has exited and its last answers are read."""
        await self._process.wait()
        await self._reader

    async def close(self) -> None:
        """End of stream: the child finishes its last batch and exits (killed after 10 s)."""
        self._stdin.close()
        try:
            await asyncio.wait_for(self._process.wait(), timeout=10)
        except TimeoutError:
            self.kill()
        await self.ended()


def _widen_pipe(stdin: asyncio.StreamWriter) -> None:
    """Let a whole batch fit in the pipe (Linux allows 1 MiB without privileges), so the
    child can read it while this process's event loop is busy with requests. Elsewhere, or
    when refused, the default size only means smaller writes."""
    pipe = stdin.get_extra_info("pipe")
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if pipe is None or set_size is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe.fileno(), set_size, _PIPE_BYTES)


def _kill(child: asyncio.subprocess.Process) -> None:
    if child.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            child.kill()

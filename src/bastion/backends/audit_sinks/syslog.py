"""The ``syslog`` destination: RFC 5424 messages over UDP, TCP or a local unix socket.

UDP and unix sockets carry one message per datagram. TCP frames messages by octet counting
(RFC 6587 section 3.4.1: ``MSG-LEN SP SYSLOG-MSG``), so an event can never be split or merged
by a newline. A checkpoint travels as a message with MSGID ``audit.checkpoint``.

No message is longer than ``MAX_MESSAGE_BYTES``: one that still is without its details is
cut at its end and marked, so every event fits a datagram and none is retried for ever.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from bastion.backends.audit_sinks.base import (
    DeliveryError,
    Record,
    RecordRefusedError,
    checkpoint_of,
    is_checkpoint,
)
from bastion.core.audit import event_from_json, format_timestamp
from bastion.core.audit_formats import (
    FACILITIES,
    ascii_json,
    fit,
    header_field,
    syslog_line,
)

# rsyslog's default maxMessageSize; bigger messages lose their details (the database has them).
MAX_MESSAGE_BYTES = 8096
_TIMEOUT_SECONDS = 10.0


def _peer_closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def checkpoint_message(record: Record, *, hostname: str, facility: str) -> str:
    checkpoint = checkpoint_of(record)
    return (
        f"<{FACILITIES[facility] * 8 + 6}>1 {format_timestamp(checkpoint.timestamp)}"
        f" {header_field(hostname, 255)}"
        f" bastion {os.getpid()} audit.checkpoint - {ascii_json(dict(record))}"
    )


class SyslogDestination:
    name = "syslog"

    def __init__(
        self,
        *,
        protocol: Literal["udp", "tcp", "unix"],
        host: str | None = None,
        port: int = 514,
        socket_path: str | None = None,
        facility: str = "authpriv",
    ) -> None:
        self.protocol = protocol
        self.host = host
        self.port = port
        self.socket_path = socket_path
        self.facility = facility
        self.hostname = socket.gethostname() or "-"
        self._sock: socket.socket | None = None

    def message(self, record: Record) -> str:
        """The record's RFC 5424 message, at most ``MAX_MESSAGE_BYTES``; ValueError if the
        record is neither an audit event nor a checkpoint."""
        if is_checkpoint(record):
            line = checkpoint_message(record, hostname=self.hostname, facility=self.facility)
        else:
            line = syslog_line(
                event_from_json(record),
                hostname=self.hostname,
                procid=str(os.getpid()),
                facility=self.facility,
                max_bytes=MAX_MESSAGE_BYTES,
            )
        # Cut at the end, as RFC 5424 section 6.1 has a receiver truncate: the header stays
        # whole (it is all ASCII, so characters are bytes); the database keeps the event.
        return fit(line, MAX_MESSAGE_BYTES)

    def _connect(self) -> socket.socket:
        if self._sock is not None and self.protocol == "tcp" and _peer_closed(self._sock):
            # A receiver that went away would swallow the next batch into a dead socket.
            self.close()
        if self._sock is not None:
            return self._sock
        if self.protocol == "unix":
            assert self.socket_path is not None
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.settimeout(_TIMEOUT_SECONDS)
            sock.connect(self.socket_path)
        else:
            assert self.host is not None
            kind = socket.SOCK_STREAM if self.protocol == "tcp" else socket.SOCK_DGRAM
            family, _, _, _, address = socket.getaddrinfo(self.host, self.port, type=kind)[0]
            sock = socket.socket(family, kind)
            sock.settimeout(_TIMEOUT_SECONDS)
            sock.connect(address)
        self._sock = sock
        return sock

    def send(self, records: Sequence[Record], *, now: datetime) -> None:
        messages: list[bytes] = []
        for index, record in enumerate(records):
            try:
                messages.append(self.message(record).encode("ascii"))
            except ValueError:
                self._transmit(messages)
                raise RecordRefusedError("syslog: not an audit event", index=index) from None
        self._transmit(messages)

    def _transmit(self, messages: Sequence[bytes]) -> None:
        if not messages:
            return
        try:
            sock = self._connect()
            if self.protocol == "tcp":
                sock.sendall(b"".join(b"%d %s" % (len(m), m) for m in messages))
            else:
                for index, message in enumerate(messages):
                    self._send_datagram(sock, message, index=index)
        except OSError as exc:
            self.close()
            target = self.socket_path or f"{self.host}:{self.port}"
            reason = exc.strerror or type(exc).__name__
            raise DeliveryError(f"syslog {self.protocol} {target}: {reason}") from None

    def _send_datagram(self, sock: socket.socket, message: bytes, *, index: int) -> None:
        """One datagram; a message the socket can never carry is refused, not retried."""
        try:
            sock.send(message)
        except OSError as exc:
            if exc.errno != errno.EMSGSIZE:
                raise  # refused connection, full buffer: the receiver may yet take it
            reason = f"syslog {self.protocol}: a {len(message)}-byte message is too long"
            raise RecordRefusedError(reason, index=index) from None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

"""Audit trail benchmark, both sides of every comparison printed in one run.

    python bench/audit/run.py [--quick] [--skip-postgres]

1. Sustained durable append (SQLite, PostgreSQL): request events recorded the way bastion
   does it (level, masking, RFC 8785 encoding, hash chain, a signed checkpoint every 1,000
   events, one durable transaction per batch of 5,000) against plain inserts of the same rows
   (the same columns and JSON body, encoded plainly, hash columns fixed strings of the same
   length: no masking, no chain, no signing) through the same driver path, trials
   interleaved.
   First both sequential in one thread; then both through a group-commit writer fed by 1,000
   concurrent asyncio producers (masking and encoding happen in the producers, beside the
   writer's database work), bastion's writer both in a thread (the embedded middleware) and
   in a writer process (``bastion serve``). Targets: >= 50,000 events/s on SQLite; chain +
   signing + masking <= 15% against plain inserts.
2. Query by actor, action and time range over 1,000,000 events: p50 / p99 (target <= 50 ms).
3. Export of 1,000,000 events (ndjson, verified while streaming): rate, and the peak memory
   of the exporting process for the newest ~10% and for all of them (flat, not growing).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from workload import (  # bench/audit/workload.py, beside this file
    ACTIONS,
    T0,
    Shape,
    fresh_storage,
    median,
    percentile,
    plain_copies,
    postgres_database,
    recording,
    request_events,
    reset_postgres,
    timer,
)
from writers import PlainGroupWriter, plain_round, recorded_round

from bastion.config import parse_config
from bastion.core.model import AuditEvent, AuditQuery
from bastion.services.audit import GroupCommitAuditWriter, RecordingStorage
from bastion.services.audit.process_writer import ProcessAuditWriter

Urls = Callable[[], str]
BATCH = 5000


def append_section(label: str, urls: Urls, events: list[AuditEvent], trials: int) -> None:
    plain_events = plain_copies(events)
    rates: dict[str, list[float]] = {"plain": [], "bastion": []}
    for trial in range(trials):
        for mode in ("plain", "bastion") if trial % 2 == 0 else ("bastion", "plain"):
            storage = fresh_storage(urls())
            with timer() as elapsed:
                if mode == "plain":
                    plain_round(storage, plain_events, BATCH)
                else:
                    recorded_round(recording(storage, lambda: T0), events, BATCH)
            rates[mode].append(len(events) / elapsed())
            storage.close()
    report(f"{label}: sequential, durable batches of {BATCH}", rates)


def writer_section(label: str, urls: Urls, events: list[AuditEvent], trials: int) -> None:
    plain_events = plain_copies(events)
    rates: dict[str, list[float]] = {"plain": [], "bastion": [], "process": []}
    for trial in range(trials):
        modes = ("plain", "bastion", "process")
        for mode in modes if trial % 2 == 0 else modes[::-1]:
            url = urls()
            storage = fresh_storage(url)
            writer: Any
            if mode == "plain":
                writer, feed = PlainGroupWriter(storage), plain_events
            elif mode == "bastion":
                writer, feed = GroupCommitAuditWriter(recording(storage, lambda: T0)), events
            else:
                writer, feed = process_writer(recording(storage, lambda: T0), url), events
            rates[mode].append(len(feed) / asyncio.run(produce(writer, feed)))
            storage.close()
    report(f"{label}: group-commit writer, 1,000 concurrent producers", rates)


def process_writer(storage: RecordingStorage, url: str) -> ProcessAuditWriter:
    """The writer of `bastion serve`: the same recorder settings, batches stored by a child
    process (`bastion.audit_process`) built from a configuration naming the same database."""
    config = parse_config(
        f"storage:\n  url: {url}\nsecurity:\n  pepper: {'b' * 40}\n", source="bench"
    )
    command = [sys.executable, "-m", "bastion.audit_process"]
    return ProcessAuditWriter(storage, command=command, setup=(config, "."))


async def produce(writer: Any, events: list[AuditEvent]) -> float:
    await writer.start()
    remaining = iter(events)

    async def producer() -> None:
        for event in remaining:
            await writer.record(event)

    with timer() as elapsed:
        await asyncio.gather(*(producer() for _ in range(1000)))
    await writer.stop()
    return elapsed()


def report(title: str, rates: dict[str, list[float]]) -> None:
    best_plain = max(rates["plain"])
    print(f"\n{title}")
    for mode, values in rates.items():
        trials = ", ".join(f"{v:,.0f}" for v in values)
        print(
            f"  {MODES[mode]:26s} best {max(values):>9,.0f} ev/s  median {median(values):>9,.0f}"
            f"  [{trials}]"
        )
    for mode in rates:
        if mode == "plain":
            continue
        best_ours = max(rates[mode])
        median_ratio = median(rates[mode]) / median(rates["plain"])
        print(
            f"  {MODES[mode]} / plain {best_ours / best_plain:.3f} (best), {median_ratio:.3f}"
            f" (median): chain + signing + masking cost {(1 - best_ours / best_plain) * 100:.1f}%"
            " (best)"
        )


MODES = {
    "plain": "plain",
    "bastion": "bastion",
    "process": "bastion, writer process",
}


def build_trail(url: str, count: int) -> RecordingStorage:
    """``count`` events over 30 days, recorded through the real path (so they verify)."""
    storage = recording(fresh_storage(url), lambda: T0 + timedelta(days=31))
    shape, chunk = Shape(), 20_000
    for start in range(0, count, chunk):
        size = min(chunk, count - start)
        events = request_events(size, shape=Shape(span=shape.span * size / count), seed=start)
        shift = shape.span * start / count
        moved = [e.__class__(**{**_fields(e), "timestamp": e.timestamp + shift}) for e in events]
        recorded_round(storage, moved, BATCH)
    with storage.transaction() as tx:  # the head, as the idle sealer of a running bastion would
        tx.audit.seal_now()  # type: ignore[attr-defined]
    return storage


def _fields(event: AuditEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in event.__dataclass_fields__}


def query_section(storage: RecordingStorage, count: int, queries: int) -> None:
    rng = random.Random(3)
    latencies, returned = [], 0
    for _ in range(queries):
        actor = f"user{int(rng.paretovariate(1.2)) % Shape().actors}@example.com"
        start = T0 + timedelta(hours=rng.uniform(0, 24 * 29))
        window = timedelta(hours=rng.choice((1, 6, 24, 24 * 7)))
        query = AuditQuery(
            actor=actor, action=rng.choice(ACTIONS), since=start, until=start + window, limit=100
        )
        with timer() as elapsed, storage.transaction() as tx:
            returned += len(tx.audit.query(query))
        latencies.append(elapsed() * 1000)
    print(
        f"\nquery by actor + action + time range over {count:,} events"
        f" ({queries} queries, {returned:,} events returned)"
    )
    print(
        f"  p50 {percentile(latencies, 0.5):.2f} ms  p99 {percentile(latencies, 0.99):.2f} ms"
        f"  max {max(latencies):.2f} ms  (target p99 <= 50 ms)"
    )


def export_section(db: Path, count: int) -> None:
    print(
        f"\nexport (ndjson: checked from its anchor checkpoint, then streamed) of {count:,} events"
    )
    for label, since_days in (("newest ~10%", 27), ("all", None)):
        child = Path(__file__).parent / "export_child.py"
        argv = [sys.executable, str(child), f"sqlite:///{db}", str(since_days or "")]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
        if out.returncode != 0:
            raise SystemExit(f"export failed: {out.stderr.strip()}")
        rate, events, peak_kib = out.stdout.split()
        print(
            f"  {label:12s} {int(events):>9,} events {float(rate):>9,.0f} ev/s"
            f"  peak RSS {int(peak_kib) / 1024:.0f} MiB"
        )


@contextmanager
def sqlite_urls(root: Path) -> Iterator[Urls]:
    counter = iter(range(10**6))
    yield lambda: f"sqlite:///{root / f'append-{next(counter)}.db'}"


@contextmanager
def postgres_urls() -> Iterator[Urls]:
    with postgres_database() as url:

        def fresh() -> str:
            reset_postgres(url)
            return url

        yield fresh


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="20k appends, a 100k trail")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    appended, trail = (20_000, 100_000) if args.quick else (200_000, 1_000_000)
    trials = 2 if args.quick else 3
    events = request_events(appended, shape=Shape())
    with tempfile.TemporaryDirectory(prefix="bench-audit-", dir=".") as scratch:
        root = Path(scratch)
        with sqlite_urls(root) as urls:
            append_section("SQLite", urls, events, trials)
            writer_section("SQLite", urls, events, trials)
        if not args.skip_postgres:
            with postgres_urls() as urls:
                append_section("PostgreSQL", urls, events, trials)
                writer_section("PostgreSQL", urls, events, trials)
        db = root / "trail.db"
        with timer() as built:
            storage = build_trail(f"sqlite:///{db}", trail)
        print(f"\n(built a {trail:,}-event SQLite trail through the recorder in {built():.0f} s)")
        query_section(storage, trail, 200 if args.quick else 1000)
        storage.close()
        export_section(db, trail)


if __name__ == "__main__":
    main()

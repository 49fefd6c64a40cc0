"""What a long-running bastion process does with the heap it built while starting."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Move what start-up built (configuration, compiled models, routes, libraries) out of
    the collector's reach: it lives as long as the process, and a full collection walks all
    of it. In the gateway such a walk pauses every request (95 ms for the 137,000 objects of
    a freshly started gateway on a 2-core machine; under a millisecond once they are frozen).
    In the audit writer process a batch of thousands of events triggers several of them: a
    5,000-event batch cost 42 µs an event with the start-up heap in reach and 26 µs frozen
    (best of five runs each, same machine). Called once, when start-up is done."""
    gc.collect()
    gc.freeze()

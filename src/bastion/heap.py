"""What a long-running bastion process does with the heap it built while starting, and how
often its cyclic collector runs from then on."""

from __future__ import annotations

import gc

# The youngest generation is collected once this many more container objects have been
# allocated than freed. CPython's default (700) is reached by the state of the requests in
# flight alone (50 concurrent requests hold more than that for a few milliseconds), so the
# collector kept walking objects that were about to be freed by reference counting anyway:
# under wrk on a 2-core machine the gateway ran 5,800 young collections in 27 s of CPU
# (about 130 µs each, 4% of its CPU) and a full one every half second (3 to 4 ms each).
# At 10,000 only real growth triggers one: 25 young collections in the same run (about
# 2 ms each), no full one while serving, under 1% of the CPU. Cyclic garbage waits for at
# most that many allocations, a few MiB at worst. The older generations keep their ratios.
YOUNG_THRESHOLD = 10_000


def freeze_startup_heap() -> None:
    """Move what start-up built (configuration, compiled models, routes, libraries) out of
    the collector's reach: it lives as long as the process, and a full collection walks all
    of it. In the gateway such a walk pauses every request (95 ms for the 137,000 objects of
    a freshly started gateway on a 2-core machine; under a millisecond once they are frozen).
    In the audit writer process a batch of thousands of events triggers several of them: a
    5,000-event batch cost 42 µs an event with the start-up heap in reach and 26 µs frozen
    (best of five runs each, same machine). Then collect the youngest generation only on real
    growth (`YOUNG_THRESHOLD`). Called once, when start-up is done."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)

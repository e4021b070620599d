"""Python's cyclic garbage collector, tuned for a long-running service.

With the interpreter's defaults a collection of the youngest generation runs every 700 net
allocations of container objects, and every tenth of those also walks the next one. A
service handling a poll of events or a batch of requests allocates far more than that, so
it collected dozens of times a poll: py-spy found `gc_collect_main` at 6-25% of the
ingest, matcher and notifier processes' CPU under `bench.e2e`. Almost nothing a poll
allocates is in a reference cycle (reference counting frees it as the poll ends), so the
collector's walks found little and cost much.

After startup, `settle_collector` collects once, moves everything alive then (modules,
models, compiled statements, the app) into the permanent generation that no collection
walks (`gc.freeze`), and raises the youngest generation's threshold. Cycles are still
found, later: at the threshold's allocations, a few megabytes at most.
"""

from __future__ import annotations

import gc


def settle_collector(young_threshold: int) -> None:
    """Collect, freeze what survives, and collect the youngest generation only every
    `young_threshold` net container allocations (older generations keep their ratios)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, older, oldest)

"""Two of each for the whole-pipeline benchmark: more matcher and notifier processes in the
same consumer groups, the rate mode's figures, and one configuration against another."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx

from bench.e2e_load import Load, ScheduledWatch, percentile
from schemas import topics
from tests.support.ports import free_port
from tests.support.stack import Stack
from tests.support.stack_process import Service

KEPT_UP_RATE = 0.95  # of the offered rate, accepted
KEPT_UP_BACKLOG_S = 2.0  # of arrivals, still in the pipeline at the last 202


def scale_out(stack: Stack, counts: Mapping[str, int], *, timeout_s: float = 120) -> None:
    """Start copies of the matcher and the notifier (`matcher-2` ...) on free ports, with the
    first one's environment (its database role, its principal: the same consumer group), and
    wait until the copies of each share the partitions of the topic it consumes, so no
    rebalance lands in the load."""
    for name, count in counts.items():
        first = stack.services[name]
        for number in range(2, count + 1):
            copy = Service(name, free_port(), stack.logs / f"{name}-{number}.log",
                           dict(first.child.env))
            copy.child.name = f"{name}-{number}"
            stack.services[copy.child.name] = copy  # stopped with the rest by stack.close()
            copy.start()
    partitions = stack.settings().topic_layout().partitions
    copies = {name: [s for n, s in stack.services.items() if n.split("-")[0] == name]
              for name in counts}
    deadline = time.monotonic() + timeout_s
    while not all(_shared(copies[name], stack.topic_prefix + CONSUMED[name], partitions,
                          stack.metrics_auth)
                  for name in counts):
        if time.monotonic() > deadline:
            raise TimeoutError("the copies' consumer groups did not settle")
        time.sleep(0.5)
    print("processes: " + ", ".join(f"{len(c)} {n} (ports {', '.join(str(s.port) for s in c)})"
                                    for n, c in copies.items())
          + f"; topics have {partitions} partitions, so up to {partitions} consumers of a "
          "group share its work")


CONSUMED = {"matcher": topics.INCIDENTS, "notifier": topics.MATCHES}
_LAG = re.compile(r'^daybreak_consumer_lag\{([^}]*)\}', re.M)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def _shared(copies: Sequence[Service], topic: str, partitions: int,
            auth: dict[str, str]) -> bool:
    """True when every copy consumes some of the topic's partitions and together all, once
    (each copy's consume loop reports the partitions assigned to it in /metrics)."""
    held: list[int] = []
    for service in copies:
        text = httpx.get(f"{service.url}/metrics", headers=auth, timeout=5).text
        series = [dict(_LABEL.findall(labels)) for labels in _LAG.findall(text)]
        mine = {int(labels["partition"]) for labels in series if labels.get("topic") == topic}
        if not mine:
            return False
        held.extend(mine)
    return sorted(held) == list(range(partitions))


@dataclass(frozen=True)
class RateFigures:
    """What the open loop measured: whether the pipeline kept up, and how late it answered."""

    offered: float
    achieved: float
    accepted: int
    generator_late_s: float
    latencies: Sequence[float]
    backlog_children: int
    backlog_s: float
    drained_s: float

    @classmethod
    def of(cls, load: Load, watch: ScheduledWatch, rate: float, backlog_children: int,
           children: int, drained_s: float) -> RateFigures:
        """From the load, the notifications read, and the backlog left at the last 202."""
        accepted = len(load.accepted_at)
        children_per_s = rate * children / max(accepted, 1)
        return cls(offered=rate, achieved=accepted / (load.finished - load.started),
                   accepted=accepted, generator_late_s=load.late_s,
                   latencies=watch.latencies(load.accepted_at),
                   backlog_children=backlog_children,
                   backlog_s=backlog_children / children_per_s, drained_s=drained_s)

    @property
    def kept_up(self) -> bool:
        """Accepted at (nearly) the offered rate, with little left in the pipeline at the end."""
        return (self.achieved >= KEPT_UP_RATE * self.offered
                and self.backlog_s <= KEPT_UP_BACKLOG_S)

    def p(self, fraction: float) -> float:
        """A latency percentile in seconds."""
        return percentile(self.latencies, fraction) if self.latencies else float("nan")

    def report(self) -> None:
        """Print the rate mode's lines."""
        print(f"rate mode: offered {self.offered:,.0f}/s on a steady clock, achieved "
              f"{self.achieved:,.1f}/s ({self.accepted:,} accepted; the generator was at most "
              f"{self.generator_late_s * 1000:.0f} ms behind its own schedule)")
        lat = self.latencies
        print(f"latency at {self.offered:,.0f}/s, 202 read → NotificationScheduled read on "
              f"notifications.v1 ({len(lat):,} incidents with a notification): "
              f"p50 {self.p(0.5):.2f} s, p95 {self.p(0.95):.2f} s, p99 {self.p(0.99):.2f} s, "
              f"max {max(lat, default=float('nan')):.2f} s")
        verdict = "kept up" if self.kept_up else "did NOT keep up"
        print(f"backlog at the last 202: {self.backlog_children:,} children still in the "
              f"pipeline (= {self.backlog_s:.1f} s of arrivals), drained {self.drained_s:.1f} s "
              f"later: {verdict} (accepted ≥ {KEPT_UP_RATE:.0%} of the offered rate and at most "
              f"{KEPT_UP_BACKLOG_S:.0f} s of arrivals left)")


class Measured(Protocol):
    """One configuration's figures (bench.e2e.Result)."""

    @property
    def label(self) -> str: ...
    @property
    def sustained(self) -> float: ...
    @property
    def cpu_ms(self) -> float: ...
    @property
    def latency(self) -> RateFigures | None: ...


def compare(results: Sequence[Measured]) -> None:
    """Print each configuration's figures and the last one's ratio to the first."""
    print("\nscale comparison (the same workload, a fresh stack each):")
    for result in results:
        print(f"  {result.label:<26} sustained {result.sustained:8,.1f} incidents/s, CPU "
              f"{result.cpu_ms:.2f} ms/incident" + _latency(result.latency))
    first, last = results[0], results[-1]
    line = (f"  ratio {last.label} / {first.label}: sustained "
            f"{last.sustained / first.sustained:.2f}x, CPU per incident "
            f"{last.cpu_ms / first.cpu_ms:.2f}x")
    if first.latency and last.latency:
        line += f", p99 {last.latency.p(0.99) / first.latency.p(0.99):.2f}x"
        line += " (rate mode: both ran at the offered rate; capacity is the run without --rate)"
    print(line)


def _latency(figures: RateFigures | None) -> str:
    if figures is None:
        return ""
    return (f", p50 {figures.p(0.5):.2f} s, p99 {figures.p(0.99):.2f} s, "
            f"{'kept up' if figures.kept_up else 'did NOT keep up'}")

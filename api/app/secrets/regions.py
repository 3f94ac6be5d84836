"""Which region to ask: the primary, then its replicas, with a circuit breaker per region.

A secret replicated to other regions (``secrets provision --replica-region``) can be
read there when its primary region is down. The chain is the primary region, then the
replicas in the order configured (``SECRETS_REPLICA_REGIONS``). Each region has a
circuit:

* **closed**: the region is asked first, in its place in the chain;
* **open**: a read failed there for a regional reason (unreachable, timed out, 5xx,
  throttled past botocore's retries); for ``cooldown`` seconds it is asked last;
* **half-open**: the cool-down is over; the next read asks it in its place again, as
  a probe: success closes the circuit (reads return to it), failure opens it again.

A region not yet known to answer is asked with a probe client: one attempt, short
timeouts, so that a dead region costs one connect timeout before the next is asked.
Access denied, not found or a bad key never move to another region: those are
configuration errors, the same everywhere.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["DEFAULT_COOLDOWN", "PROBE_TIMEOUTS", "REGION_PLACEHOLDER", "RegionChain", "parse_regions", "region_option"]

# (connect, read) seconds for a region not known to answer: bounded failover.
PROBE_TIMEOUTS = (2.0, 5.0)
DEFAULT_COOLDOWN = 30.0


_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")

# The region of a printed command when it is not known: the variable the docs' shell sets
# (docs/deployment.md: REGION=$(P AWS_REGION)), which the shell refuses to expand while it
# is unset. Never a real region that may be the wrong one.
REGION_PLACEHOLDER = '"${REGION:?set REGION to the region of your secrets}"'


def region_option(region: str | None) -> str:
    """``--region R`` for a printed ``ecomind secrets`` command, which runs in a shell that
    may not export AWS_REGION (the docs pass it inline): the placeholder when not known."""
    return f"--region {region or REGION_PLACEHOLDER}"


def parse_regions(text: str | None) -> tuple[list[str], list[str]]:
    """SECRETS_REPLICA_REGIONS (comma- or space-separated): the regions, and what is not a region."""
    items = [item for item in re.split(r"[,\s]+", text or "") if item]
    return [r for r in items if _REGION.match(r)], [r for r in items if not _REGION.match(r)]


@dataclass
class _Circuit:
    opened_at: float | None = None
    answered: bool = False  # answered since the circuit last closed


class RegionChain:
    def __init__(
        self,
        primary: str | None,
        replicas: Sequence[str] = (),
        *,
        cooldown: float = DEFAULT_COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.replicas = [r for r in dict.fromkeys(replicas) if r and r != primary]
        self.cooldown = cooldown
        self.clock = clock
        self._circuits: dict[str | None, _Circuit] = {}
        self._lock = threading.Lock()

    @property
    def regions(self) -> list[str | None]:
        return [self.primary, *self.replicas]

    def reachable(self) -> list[str | None]:
        """The regions whose circuit is not open, in chain order (all of them if every one is open)."""
        now = self.clock()
        with self._lock:
            closed = [r for r in self.regions if not self._open(r, now)]
        return closed or self.regions

    def chain(self, home: str | None) -> list[str | None]:
        """Regions to ask for a secret whose home is ``home``, open circuits last."""
        if home != self.primary or not self.replicas:
            return [home]
        now = self.clock()
        with self._lock:
            closed = [r for r in self.regions if not self._open(r, now)]
            opened = [r for r in self.regions if self._open(r, now)]
        return closed + opened

    def probe(self, region: str | None) -> bool:
        """Whether to ask ``region`` with the one-attempt client (it has not answered yet)."""
        if not self.replicas:
            return False
        with self._lock:
            return not self._circuits.setdefault(region, _Circuit()).answered

    def succeeded(self, region: str | None) -> None:
        with self._lock:
            self._circuits[region] = _Circuit(answered=True)

    def failed(self, region: str | None) -> None:
        with self._lock:
            self._circuits[region] = _Circuit(opened_at=self.clock())

    def is_open(self, region: str | None) -> bool:
        with self._lock:
            return self._open(region, self.clock())

    def _open(self, region: str | None, now: float) -> bool:
        circuit = self._circuits.get(region)
        return circuit is not None and circuit.opened_at is not None and now - circuit.opened_at < self.cooldown

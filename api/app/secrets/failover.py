"""Regional failover of Secrets Manager reads: which keys move on to the next region, and the
error of a key no region served.

The backend (app/secrets/aws.py) reads; :class:`app.secrets.regions.RegionChain` orders the
regions and keeps their circuits; this module walks the chain with them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Literal

from app.secrets import emulator
from app.secrets.base import Fetched
from app.secrets.errors import EmulatorFailed, SecretNotFound, SecretsManagerUnreachable, SecretsThrottled
from app.secrets.refs import AwsRef
from app.secrets.regions import RegionChain

__all__ = ["Patience", "failover", "regional_failure"]

log = logging.getLogger("app.secrets.aws")

# How long a read may take: the backend's clients by patience (app.secrets.aws.PATIENCE).
Patience = Literal["full", "probe", "fast"]
FetchIn = Callable[[str | None, list[AwsRef], Patience], dict[AwsRef, Fetched]]


def regional_failure(got: Fetched) -> bool:
    """A failure of the region, not of the secret: another region may answer."""
    return isinstance(got, SecretsManagerUnreachable | SecretsThrottled)


def failover(
    chain: list[str | None],
    keys: list[AwsRef],
    home: str | None,
    regions: RegionChain,
    fetch_in: FetchIn,
    fast: bool = False,
) -> dict[AwsRef, Fetched]:
    """Ask each region in turn for the keys the previous one could not answer.

    A region moves a key on when it failed for a regional reason (unreachable,
    throttled), or when it is a replica region without the secret (a replica being
    added or removed, or one that lags): only the home region's "not found" is the
    secret's. Access denied or a bad key stop at once: they are the same everywhere."""
    pending, out = list(keys), {}
    failures: dict[AwsRef, list[tuple[str | None, Fetched]]] = defaultdict(list)
    for region in chain:
        if not pending:
            break
        probe = len(chain) > 1 and regions.probe(region)
        patience: Patience = "fast" if fast else "probe" if probe else "full"
        got = fetch_in(region, pending, patience)
        throttled = [k for k in pending if isinstance(got[k], SecretsThrottled)]
        if patience == "probe" and throttled:
            # Throttled is not unreachable: botocore's retries get their turn before a failover.
            got.update(fetch_in(region, throttled, "full"))
        regional = [k for k in pending if regional_failure(got[k])]
        absent = [] if region == home else [k for k in pending if isinstance(got[k], SecretNotFound)]
        moving = regional + absent
        out.update({k: got[k] for k in pending if k not in moving})
        for key in moving:
            failures[key].append((region, got[key]))
        _record(regions, region, len(chain), got, regional, absent)
        pending = moving
    for key in pending:
        out[key] = _unserved(key, failures[key])
    return out


def _record(
    regions: RegionChain,
    region: str | None,
    chain_length: int,
    got: dict[AwsRef, Fetched],
    regional: list[AwsRef],
    absent: list[AwsRef],
) -> None:
    """The region's circuit after its answer, and a warning for each reason keys move on."""
    if regional:
        if chain_length > 1:
            regions.failed(region)
            log.warning(
                "Secrets Manager in %s failed (%s) for %d secret(s); asking the next region",
                region,
                type(got[regional[0]]).__name__,
                len(regional),
            )
    else:
        regions.succeeded(region)
    if absent:
        log.warning("%d secret(s) have no replica in %s; asking the next region", len(absent), region)


def _unserved(key: AwsRef, tried: list[tuple[str | None, Fetched]]) -> Fetched:
    """The error of a key no region served: the one answer when one region was asked, else every
    region's outcome in one message."""
    if len(tried) == 1:
        return tried[0][1]
    where = ", ".join(f"{r} ({_outcome(got)})" for r, got in tried)
    failed = [got for _, got in tried if isinstance(got, EmulatorFailed)]
    if len(failed) == len(tried):
        # One emulator answers for every region: its failure, whichever region is asked.
        return EmulatorFailed(
            f"{failed[0].message} (and in every region asked: {where})",
            reference=str(key),
            fix=emulator.FIX,
        )
    return SecretsManagerUnreachable(
        f"Secrets Manager could not serve {key} in any region asked: {where}",
        reference=str(key),
        fix="ecomind doctor   # then check each region's endpoint (VPC endpoint or NAT route)",
    )


def _outcome(got: Fetched) -> str:
    """What a region answered, in a word or two, for a message that lists the regions asked."""
    if isinstance(got, SecretsThrottled):
        return "throttled"
    if isinstance(got, EmulatorFailed):
        return "emulator failed"
    if isinstance(got, SecretNotFound):
        return "no replica"
    return "unreachable"

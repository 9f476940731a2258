"""Readiness: do the database, the broker and the object store answer, within a timeout?

Each part is checked in a thread of its own, so one that hangs (a firewall dropping
packets) costs the timeout and no more, and the others are still reported. Results are
codes; the API's ops routes turn them into words. Nothing here names a host or a key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

from sqlalchemy import text

from services.core import runtime
from services.core.celery_app import app as celery_app
from services.core.errors import BucketMissing

log = logging.getLogger(__name__)

# Seconds each part may take before it counts as down.
DEFAULT_TIMEOUT_S = 3.0

# Result codes of one check.
OK = "ok"
DOWN = "down"
TIMEOUT = "timeout"
BUCKET_MISSING = "bucket_missing"


@dataclass(frozen=True)
class Check:
    part: str
    result: str

    @property
    def ok(self) -> bool:
        return self.result == OK


def _database() -> None:
    with runtime.sessions()() as session:
        session.execute(text("SELECT 1"))


def _broker(timeout: float) -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)
        # Opening a channel makes the transport talk to the server (Redis: PING).
        conn.default_channel  # noqa: B018 - the property connects


def _store() -> None:
    # A listing reaches the bucket itself: a HEAD of a missing key cannot tell a
    # missing bucket from a missing object, a listing can.
    next(iter(runtime.store().list_keys("readyz")), None)


def _run(part: str, probe: Callable[[], None]) -> Check:
    try:
        probe()
    except BucketMissing:
        return Check(part, BUCKET_MISSING)
    except Exception as exc:  # any failure of the dependency means "not ready"
        log.warning("readiness: %s is down: %s: %s", part, type(exc).__name__, exc)
        return Check(part, DOWN)
    return Check(part, OK)


def readiness(timeout: float = DEFAULT_TIMEOUT_S) -> list[Check]:
    """One Check per part, in a fixed order: database, broker, store."""
    probes: list[tuple[str, Callable[[], None]]] = [
        ("database", _database),
        ("broker", lambda: _broker(timeout)),
        ("store", _store),
    ]
    pool = ThreadPoolExecutor(max_workers=len(probes), thread_name_prefix="readyz")
    futures = [pool.submit(_run, part, probe) for part, probe in probes]
    wait(futures, timeout=timeout)
    # A hung probe's thread is left to finish on its own; the answer does not wait.
    pool.shutdown(wait=False, cancel_futures=True)
    return [f.result() if f.done() else Check(part, TIMEOUT)
            for (part, _), f in zip(probes, futures, strict=True)]

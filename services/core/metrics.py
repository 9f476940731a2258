"""Prometheus metrics, read from the database at scrape time.

Screening runs in worker processes (other containers in production, a child process
in the embedded install) and publishing in the API, so counters kept in one process's
memory would each see part of the story. The database sees all of it: gauges are
counted there, and counters are totals of audit events (the trail is append-only and
its ids are handed out under the audit head's lock, so reading on from the last id
seen never misses one). The first scrape of a process reads the trail from the start;
after that each scrape reads only what is new.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from models.db import transaction
from models.orm import MediaStatus
from models.repositories.metrics import MetricsRepository
from services.core import runtime

# Screening time per medium, in seconds: a photo takes about 0.3-2 s, a video minutes.
SCREENING_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
# Audit events read per query while catching up.
BATCH = 5000

SCREENED = "media.screened"
SCREENING_FAILED = "media.screening_failed"
PUBLISHED = "publication.created"
REFUSED = "publication.refused"
WITHDRAWN = "publication.withdrawn"
WEBHOOK_FAILED = "webhook.delivery_failed"
PURGED = "media.purged"
ACTIONS = (SCREENED, SCREENING_FAILED, PUBLISHED, REFUSED, WITHDRAWN, WEBHOOK_FAILED, PURGED)


class _Totals:
    """Running totals of the audit events read so far by this process."""

    def __init__(self) -> None:
        self.last_id = 0
        self.screenings: Counter[str] = Counter()
        self.buckets = [0] * len(SCREENING_BUCKETS)
        self.duration_count = 0
        self.duration_sum = 0.0
        self.decisions: Counter[tuple[str, str]] = Counter()
        self.refusals: Counter[str] = Counter()
        self.takedowns: Counter[str] = Counter()
        self.webhook_failures = 0
        self.purges = 0
        self.purged_versions = 0

    def add(self, action: str, details: dict[str, Any]) -> None:
        if action == SCREENED:
            self.screenings[str(details.get("status", "unknown"))] += 1
            seconds = details.get("seconds")
            if isinstance(seconds, int | float):
                self.duration_count += 1
                self.duration_sum += float(seconds)
                for i, bound in enumerate(SCREENING_BUCKETS):
                    if seconds <= bound:
                        self.buckets[i] += 1
        elif action == SCREENING_FAILED:
            self.screenings[MediaStatus.FAILED.value] += 1
        elif action == PUBLISHED:
            self.decisions[(str(details.get("channel", "")), "published")] += 1
        elif action == REFUSED:
            self.decisions[(str(details.get("channel", "")), "refused")] += 1
            # Each refusal counts once per distinct reason code it gave.
            codes = {str(r.get("code")) for r in details.get("reasons", [])
                     if isinstance(r, dict) and r.get("code")}
            for code in codes:
                self.refusals[code] += 1
        elif action == WITHDRAWN:
            self.takedowns[str(details.get("channel", ""))] += 1
        elif action == WEBHOOK_FAILED:
            self.webhook_failures += 1
        elif action == PURGED:
            self.purges += 1
            versions = details.get("object_versions_deleted")
            if isinstance(versions, int):
                self.purged_versions += versions


class ConsentGateCollector(Collector):
    def __init__(self) -> None:
        self.totals = _Totals()
        self.lock = threading.Lock()

    def _catch_up(self, repo: MetricsRepository) -> None:
        while True:
            events = repo.audit_after(self.totals.last_id, ACTIONS, BATCH)
            for event_id, action, details in events:
                self.totals.add(action, details)
                self.totals.last_id = event_id
            if len(events) < BATCH:
                return

    def collect(self) -> Iterator[Metric]:
        with self.lock, transaction(runtime.sessions(), write=False) as session:
            repo = MetricsRepository(session)
            self._catch_up(repo)
            by_status = repo.media_by_status()
            outbox = repo.outbox_pending()
            deliveries = repo.webhook_deliveries_by_status()
        t = self.totals

        depth = GaugeMetricFamily(
            "consentgate_queue_depth",
            "Work waiting: media queued for screening, object deletions pending in the "
            "outbox, takedown webhooks not yet delivered.", labels=["queue"])
        depth.add_metric(["screening"], by_status.get(MediaStatus.QUEUED.value, 0))
        depth.add_metric(["outbox"], outbox)
        depth.add_metric(["webhooks"], deliveries.get("pending", 0))
        yield depth

        media = GaugeMetricFamily("consentgate_media", "Media by status.", labels=["status"])
        for status in MediaStatus:
            media.add_metric([status.value], by_status.get(status.value, 0))
        yield media

        hist = HistogramMetricFamily(
            "consentgate_screening_duration_seconds",
            "Time from a worker claiming a medium to its screening result being saved.")
        hist.add_metric([], [*((str(b), n) for b, n in zip(SCREENING_BUCKETS, t.buckets,
                                                             strict=True)),
                             ("+Inf", t.duration_count)], sum_value=t.duration_sum)
        yield hist

        screenings = CounterMetricFamily(
            "consentgate_screenings", "Screenings finished, by the status they gave.",
            labels=["status"])
        for outcome, n in sorted(t.screenings.items()):
            screenings.add_metric([outcome], n)
        yield screenings

        decisions = CounterMetricFamily(
            "consentgate_publish_decisions", "Publish requests the gate decided, by channel "
            "and outcome (published or refused).", labels=["channel", "outcome"])
        for (channel, outcome), n in sorted(t.decisions.items()):
            decisions.add_metric([channel, outcome], n)
        yield decisions

        refusals = CounterMetricFamily(
            "consentgate_refusals", "Refused publish requests, by reason code (a refusal with "
            "several reasons counts under each).", labels=["reason"])
        for code, n in sorted(t.refusals.items()):
            refusals.add_metric([code], n)
        yield refusals

        takedowns = CounterMetricFamily(
            "consentgate_takedowns", "Published copies taken down, by channel.",
            labels=["channel"])
        for channel, n in sorted(t.takedowns.items()):
            takedowns.add_metric([channel], n)
        yield takedowns

        yield CounterMetricFamily(
            "consentgate_webhook_failures", "Takedown webhook deliveries given up after "
            "every attempt failed.", value=t.webhook_failures)
        yield CounterMetricFamily(
            "consentgate_purges", "Media purged at the end of retention or on request.",
            value=t.purges)
        yield CounterMetricFamily(
            "consentgate_purged_object_versions", "Object versions deleted by purges.",
            value=t.purged_versions)


def make_registry() -> CollectorRegistry:
    """A registry of its own per app, so tests that build several apps do not collide."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ConsentGateCollector())
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)

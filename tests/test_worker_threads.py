"""`consentgate worker --concurrency N` shares the cores between its processes: each gets
CPUs / N onnxruntime threads unless CONSENTGATE_DETECTOR_THREADS says otherwise."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from services.core import runtime
from services.core.config import get_settings
from tests.support import run_cli

VAR = "CONSENTGATE_DETECTOR_THREADS"


@pytest.fixture
def threads_seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    from workers.celery_app import app

    seen: list[int] = []
    monkeypatch.setattr(app, "worker_main",
                        lambda argv: seen.append(get_settings().detector_threads))
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    yield seen
    runtime.reset()


def _worker(monkeypatch: pytest.MonkeyPatch, concurrency: int, preset: str | None) -> None:
    # setenv first, so that monkeypatch puts the variable back as it was after the test.
    monkeypatch.setenv(VAR, "0")
    monkeypatch.delenv(VAR)
    if preset is not None:
        monkeypatch.setenv(VAR, preset)
    run_cli("worker", "--concurrency", str(concurrency))


def test_worker_processes_split_the_cores(
    threads_seen: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    _worker(monkeypatch, 2, None)
    _worker(monkeypatch, 8, None)
    # One process: 0, the engine's own default of min(2, CPUs).
    _worker(monkeypatch, 1, None)
    _worker(monkeypatch, 2, "3")
    assert threads_seen == [2, 1, 0, 3]

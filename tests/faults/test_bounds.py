"""The recovery bounds the settings promise (issue 12), for the defaults and for the
fault tests' short time limit: a lost screening is re-sent within the time limit plus a
minute, by the sweep and by the broker."""

from __future__ import annotations

import pytest

from services.core.celery_app import make_app, visibility_timeout_s
from services.core.config import Settings


@pytest.mark.parametrize("limit", [900, 20])
def test_a_lost_screening_is_resent_within_the_time_limit_plus_a_minute(limit: int) -> None:
    settings = Settings(screening_time_limit_s=limit)
    sweep_bound = (settings.screening_time_limit_s + settings.screening_grace_s
                   + settings.sweep_interval_s)
    assert sweep_bound <= limit + 60
    # The broker waits past the hard kill (limit + grace), so a screening still running
    # is never handed to a second worker, and no longer than the promise.
    assert limit + settings.screening_grace_s < visibility_timeout_s(settings) <= limit + 60


def test_the_redis_transport_gets_the_visibility_timeout() -> None:
    # The suite's broker is Redis (tests/conftest.py).
    options = make_app().conf.broker_transport_options
    assert options["visibility_timeout"] == visibility_timeout_s(Settings())

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.badinput import backends


@pytest.fixture(scope="module", params=["embedded", "postgres"])
def backend(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[backends.Backend]:
    """Each test of a module runs on both backends (one backend set up at a time)."""
    if request.param == "embedded":
        with backends.embedded(tmp_path_factory.mktemp("embedded")) as backend:
            yield backend
    else:
        database: str = request.getfixturevalue("database")
        request.getfixturevalue("app_env")
        with backends.postgres(database) as backend:
            yield backend

"""The embedded broker: kombu's SQLAlchemy transport on SQLite with our polling interval,
which kombu alone would hand to create_engine() and crash on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kombu import Connection

from services.core import embedded_broker
from services.core.celery_app import _transport_options
from services.core.config import get_settings


def test_a_message_goes_through_the_tuned_transport_and_the_file_is_wal(
        tmp_path: Path) -> None:
    url = f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    options = _transport_options(url, get_settings())
    assert options == {"polling_interval": embedded_broker.POLLING_INTERVAL_S}
    with Connection(url, transport_options=options) as conn:
        assert isinstance(conn.transport, embedded_broker.Transport)
        assert conn.transport.polling_interval == embedded_broker.POLLING_INTERVAL_S
        queue = conn.SimpleQueue("probe")
        queue.put({"media_id": "m1"})
        message = queue.get(timeout=5)
        assert message.payload == {"media_id": "m1"}
        message.ack()
        queue.put({"media_id": "m2"})
        assert queue.get(timeout=5).payload == {"media_id": "m2"}
        queue.close()
    mode = sqlite3.connect(tmp_path / "broker.db").execute("PRAGMA journal_mode").fetchone()
    assert mode == ("wal",)

"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file, polled often.

kombu's virtual transports poll, and sleep `polling_interval` (1 s by default) whenever
every queue is empty, so an idle embedded worker noticed a new upload 0.5 s later on
average and up to 1 s, and a worker finishing one photo of a batch waited as long again
for the next: 0.7 s per medium in the issue 13 measurements. Polling every 50 ms costs a
few SQLite reads a second (under 1 % of a core) and puts an idle worker on an upload
within about 60 ms (bench/REPORT.md, "Service path").

kombu's SQLAlchemy transport hands every transport option to `create_engine()`, which
refuses `polling_interval`; the Channel below takes it out first. `install()` points the
`sqla` URL scheme at this Transport, in every process that uses the Celery app.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import sqlalchemy as kombu_sqla
from sqlalchemy import create_engine, event

# Seconds an idle worker sleeps between looks at the queue.
POLLING_INTERVAL_S = 0.05

# Options that are the transport's, not create_engine()'s (kombu's own list plus ours).
_NOT_ENGINE_OPTIONS = (
    "queue_tablename", "message_tablename", "callback", "errback", "max_retries",
    "interval_start", "interval_step", "interval_max", "retry_errors", "polling_interval",
)


class Channel(kombu_sqla.Channel):
    def _engine_from_config(self) -> Any:
        conninfo = self.connection.client
        options = dict(conninfo.transport_options)
        for key in _NOT_ENGINE_OPTIONS:
            options.pop(key, None)
        engine = create_engine(conninfo.hostname, **options)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL: the API's inserts and the worker's polling reads no longer block each other.
    # In the default rollback journal a poll (a read that then marks the message taken)
    # and an insert deadlocked until pysqlite's 5 s timeout: a burst of uploads stalled
    # the worker for 5 s (measured: every claim of a 6-photo burst 5.2 s after upload).
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class Transport(kombu_sqla.Transport):
    Channel = Channel


def install() -> None:
    TRANSPORT_ALIASES["sqla"] = f"{__name__}:Transport"
    TRANSPORT_ALIASES["sqlalchemy"] = f"{__name__}:Transport"

"""The two backends the bad-input suite runs on, behind one interface.

- embedded: `consentgate serve` on a fresh data directory (SQLite, filesystem store,
  embedded worker), over real HTTP;
- postgres: the app in-process on the suite's PostgreSQL and the moto S3 server
  (versioned bucket), through TestClient.

Each can say how many rows and stored object versions exist, read from the database
file / server and the store directly, never through the API under test.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from tests.badinput.inputs import UPLOAD_LIMIT, Case
from tests.support import POLICIES, embedded_server, run_cli_in

# Tables a refused request must leave empty (the suite creates one pupil, nothing else).
TABLES = ("media", "faces", "reference_photos", "face_templates", "publications", "outbox")

LIMIT_ENV = {"CONSENTGATE_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)}


@dataclass
class Backend:
    name: str
    http: Any  # httpx.Client or fastapi TestClient: the same request API
    tokens: dict[str, dict[str, str]]
    pupil: str
    count_rows: Callable[[str], int]
    count_versions: Callable[[], int]
    media_column: Callable[[str, str], Any]
    read_object: Callable[[str], bytes]

    def rows(self) -> dict[str, int]:
        return {t: self.count_rows(t) for t in TABLES if self.count_rows(t)}

    def send(self, case: Case) -> httpx.Response:
        path = case.path.replace("{pupil}", self.pupil)
        headers = {**self.tokens[case.role], **case.headers}
        kwargs: dict[str, Any] = {"headers": headers}
        if case.files is not None:
            kwargs["files"] = case.files
        if case.data is not None:
            kwargs["data"] = case.data
        if case.json is not None:
            kwargs["json"] = case.json
        if case.content is not None:
            kwargs["content"] = case.content
        response: httpx.Response = self.http.request(case.method, path, **kwargs)
        return response


def _make_pupil(http: Any, slt: dict[str, str]) -> str:
    r = http.post("/api/v1/pupils", headers=slt, json={
        "external_id": "BAD-1", "given_name": "Ada", "family_name": "Input",
        "year_group": "Y4"})
    assert r.status_code == 201, r.text
    pupil: str = r.json()["id"]
    # So that a reference photo is refused for what it is, not for want of consent.
    r = http.post(f"/api/v1/pupils/{pupil}/biometric-consent", headers=slt,
                  json={"status": "granted", "by": "parent", "evidence_ref": "form 7"})
    assert r.status_code == 201, r.text
    return pupil


@contextmanager
def embedded(tmp: Path) -> Iterator[Backend]:
    with embedded_server(tmp, LIMIT_ENV) as (base, env):
        run_cli_in(env, "org", "create", "badinput", "--name", "Bad Input",
                   "--policy", str(POLICIES / "primary-school.yaml"))
        tokens = {}
        for role in ("staff", "slt", "publisher", "admin"):
            out = run_cli_in(env, "token", "create", "--org", "badinput", "--role", role,
                             "--name", f"{role} user")
            tokens[role] = {"Authorization": f"Bearer {out.strip().splitlines()[-1]}"}
        data = Path(env["CONSENTGATE_DATA_DIR"])
        db = data / "consentgate.db"

        def query(sql: str, *args: Any) -> list[tuple[Any, ...]]:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
                return conn.execute(sql, args).fetchall()

        def count_rows(table: str) -> int:
            return int(query(f"SELECT count(*) FROM {table}")[0][0])

        def count_versions() -> int:
            # Every file under the store's root, temporary or not, is a stored version.
            root = data / "objects"
            return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0

        def media_column(media_id: str, column: str) -> Any:
            return query(f"SELECT {column} FROM media WHERE id = ?",
                         media_id.replace("-", ""))[0][0]

        def read_object(key: str) -> bytes:
            return (data / "objects" / key).read_bytes()

        with httpx.Client(base_url=base, timeout=120) as http:
            pupil = _make_pupil(http, tokens["slt"])
            yield Backend("embedded", http, tokens, pupil, count_rows, count_versions,
                          media_column, read_object)


@contextmanager
def postgres(database_url: str) -> Iterator[Backend]:
    from fastapi.testclient import TestClient

    from services.app import create_app
    from services.core import runtime
    from tests.support import create_org, token

    saved = {k: os.environ.get(k) for k in LIMIT_ENV}
    os.environ.update(LIMIT_ENV)
    runtime.reset()
    store = runtime.store()
    engine = create_engine(database_url)

    def wipe() -> None:
        for prefix in ("originals/", "references/", "published/", "derivatives/"):
            store.delete_prefix(prefix)
        with engine.begin() as conn:
            tables = conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname='public' "
                "AND tablename <> 'alembic_version'")).scalars().all()
            conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))

    def count_rows(table: str) -> int:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())

    def count_versions() -> int:
        # Versions (and delete markers) in the whole versioned bucket.
        return store.count_versions("")

    def media_column(media_id: str, column: str) -> Any:
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT {column} FROM media WHERE id = :id"),
                                {"id": media_id}).scalar_one()

    wipe()
    try:
        create_org("badinput", "primary-school")
        tokens = {role: token("badinput", role, f"{role} user")
                  for role in ("staff", "slt", "publisher", "admin")}
        with TestClient(create_app()) as http:
            pupil = _make_pupil(http, tokens["slt"])
            yield Backend("postgres", http, tokens, pupil, count_rows, count_versions,
                          media_column, store.get)
    finally:
        wipe()
        engine.dispose()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        runtime.reset()

"""Processes the fault tests break on purpose: an S3 server (moto) in a child process that
can be stopped (SIGSTOP: it hangs, as a wedged MinIO does) and resumed, and real Celery
workers and beat in child processes whose main process can be `kill -9`ed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from models.orm import Media
from services.core import runtime
from storage.minio_store import MinioStore, make_client
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "consentgate-faults"
FINAL = ("screened", "needs_review", "failed")
TIME_LIMIT_S = 20
BOUND_S = TIME_LIMIT_S + 60  # the promise: final within the time limit plus a minute


class S3Server:
    """`python -m moto.server` in its own process: a real server socket to hang."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://{self.endpoint}/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.2)
        self.stopped = False

    def stop(self) -> None:
        """Hang: the kernel still accepts connections and buffers requests, nothing answers."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.stopped = True

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)
        self.stopped = False

    def store(self) -> MinioStore:
        """A client of our own with patient timeouts, for looking at what is stored."""
        client = make_client(self.endpoint, ACCESS_KEY, SECRET_KEY, region=REGION,
                             connect_timeout=2.0, read_timeout=30.0, retries=0)
        return MinioStore(client, BUCKET)

    def close(self) -> None:
        if self.stopped:
            self.resume()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def app_env(endpoint: str, **overrides: str) -> dict[str, str]:
    """CONSENTGATE_* for the API in this process and for the child workers: the suite's
    PostgreSQL and Redis, the moto child as the store, short client timeouts."""
    env = {
        "CONSENTGATE_MINIO_ENDPOINT": endpoint,
        "CONSENTGATE_MINIO_BUCKET": BUCKET,
        "CONSENTGATE_MINIO_CONNECT_TIMEOUT_S": "2",
        "CONSENTGATE_MINIO_READ_TIMEOUT_S": "3",
        "CONSENTGATE_MINIO_RETRIES": "2",
    }
    env.update(overrides)
    return env


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    runtime.reset()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        runtime.reset()


class Celery:
    """A real worker (`--pool solo`: the main process screens, so kill -9 of it is the
    loss of the screening) or beat, as a child process with the given environment."""

    def __init__(self, tmp: Path, env: dict[str, str], role: str = "worker") -> None:
        self.tmp, self.role = tmp, role
        self.env = {**os.environ, **env}
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.tmp / f"{self.role}-{self.starts}.log").open("wb")
        if self.role == "worker":
            args = ["worker", "--pool", "solo", "-Q", "consentgate",
                    "-n", f"faults-{uuid.uuid4().hex[:6]}@%h", "--without-mingle",
                    "--without-gossip", "--loglevel", "INFO"]
        else:
            args = ["beat", "-s", str(self.tmp / "beat-schedule"), "--loglevel", "INFO"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.celery_app:app", *args],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.started_at = time.time()

    def wait_ready(self, timeout: float = 120) -> None:
        """Until the worker says it is consuming (its start-up takes seconds here)."""
        log = self.tmp / f"{self.role}-{self.starts}.log"
        deadline = time.monotonic() + timeout
        while b" ready." not in log.read_bytes():
            assert self.proc is not None and self.proc.poll() is None, "worker died"
            assert time.monotonic() < deadline, "worker not ready"
            time.sleep(0.2)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def statuses(ids: list[uuid.UUID]) -> dict[uuid.UUID, Media]:
    with runtime.sessions()() as session:
        rows = session.scalars(select(Media).where(Media.id.in_(ids))).all()
        session.expunge_all()
        return {m.id: m for m in rows}


def worker_env(s3: S3Server, **extra: str) -> dict[str, str]:
    return app_env(
        s3.endpoint,
        CONSENTGATE_SCREENING_TIME_LIMIT_S=str(TIME_LIMIT_S),
        CONSENTGATE_SCREENING_GRACE_S="5",
        CONSENTGATE_SWEEP_INTERVAL_S="2",
        CONSENTGATE_STUCK_AFTER_S="30",
        **extra,
    )


def upload(client: TestClient, headers: dict[str, str], photo: bytes, n: int) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for i in range(n):
        r = client.post("/api/v1/media", headers=headers,
                        data={"event": f"Play {i}", "purpose": "publicity", "device": "school"},
                        files={"file": (f"play{i}.jpg", photo, "image/jpeg")})
        assert r.status_code == 202, r.text
        ids.append(uuid.UUID(r.json()["id"]))
    return ids

"""Service-path benchmark: `consentgate serve` over HTTP against the face_recognition CLI.

What a school feels is the time from upload to the final decision, not the engine's time.
This starts the real processes on fresh state, uploads a set of photos over HTTP, and
times each from its upload to its final status, beside ``face_recognition --cpus 2`` on
the same files, interleaved in the same run (CLI, service, CLI, service, ... ; each
service run's ratio uses the mean of the CLI runs either side of it).

Set-ups:

* embedded: ``consentgate serve --data-dir <fresh>`` (SQLite, the kombu SQLAlchemy
  transport on SQLite, files on disk), its embedded worker with 1 process;
* distributed, 1 and 2 worker processes: ``serve --no-worker`` plus ``consentgate worker
  --concurrency N`` on PostgreSQL, Redis and an S3 server (moto, in this process).

The photos are the event photos of ../shared/faces, each also as re-encoded variants
(cropped a few pixels and saved at another JPEG quality) so that no two files are the
same bytes; they are written to a temporary folder, never into the repository. The six
enrol/ identities are enrolled as pupils with consent (the CLI gets the same photos as
its known people).

Also measured: how long an idle worker takes to claim a medium after its upload commits
(upload commit = the media row's created_at; claim = screened_at minus the screening's
own seconds, both from the database), one upload at a time.

Run: ``.venv/bin/python bench/service_bench.py`` (part of ``make bench``); writes the
"Service path" section of bench/REPORT.md, keeping the rest. Distributed runs need
PostgreSQL and Redis: CONSENTGATE_BENCH_DATABASE_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/consentgate_bench, whose public schema is
dropped) and CONSENTGATE_BENCH_BROKER_URL (default redis://127.0.0.1:6379/15, flushed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from cryptography.fernet import Fernet
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "faces"
REPORT = ROOT / "bench" / "REPORT.md"
POLICY = ROOT / "policies" / "arts-service.yaml"
CLI = [sys.executable, "-m", "services.cli"]
SECTION = "## Service path"
DONE = ("screened", "needs_review", "failed")


# ------------------------------------------------------------------------ the photo set


def photo_set(into: Path, variants: int) -> list[Path]:
    """Event photos plus `variants` re-encoded copies of each, all different bytes."""
    out: list[Path] = []
    for src in sorted((FACES / "events").iterdir()):
        if src.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        image = Image.open(src).convert("RGB")
        for v in range(variants + 1):
            dest = into / f"{src.stem}_v{v}.jpg"
            if v == 0:
                shutil.copyfile(src, dest)
            else:
                w, h = image.size
                image.crop((v, v, w - v, h - v)).save(dest, "JPEG", quality=95 - 3 * v)
            out.append(dest)
    return out


def known_people(into: Path) -> Path:
    """The CLI's known-people folder: the enrol/ photos, named after their identity."""
    into.mkdir()
    for person in sorted((FACES / "enrol").iterdir()):
        for n, photo in enumerate(sorted(person.iterdir())):
            (into / f"{person.name}_{n}{photo.suffix}").symlink_to(photo.resolve())
    return into


# ------------------------------------------------------------------ the face_recognition CLI


def run_face_recognition_cli(known: Path, photos: Path) -> float:
    """Wall seconds of ``face_recognition --cpus 2 known photos``."""
    exe = Path(sys.executable).parent / "face_recognition"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    subprocess.run([str(exe), "--cpus", "2", str(known), str(photos)], check=True,
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


# ------------------------------------------------------------------------ the service


@dataclass
class Deployment:
    name: str
    env: dict[str, str]
    workers: int
    distributed: bool
    database_url: str


@dataclass
class ServiceRun:
    name: str
    workers: int
    photos: int
    wall_s: float
    latencies: list[float]
    claim_delays: list[float]
    screening_s: list[float]
    peak_rss_mib: list[float]
    statuses: dict[str, int] = field(default_factory=dict)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run([*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True, timeout=180).stdout


def children(pid: int) -> list[int]:
    """Every descendant process of pid."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            out += [int(child), *children(int(child))]
    return out


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the process's peak resident memory so far, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")


@contextmanager
def running(dep: Deployment, log_dir: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        log = (log_dir / f"{dep.name}-serve.log").open("wb")
        logs.append(log)
        args = ["serve", "--port", str(port)]
        if dep.distributed:
            args.append("--no-worker")
        else:
            args += ["--concurrency", str(dep.workers)]
        procs.append(subprocess.Popen([*CLI, *args], cwd=ROOT, env=dep.env, stdout=log,
                                      stderr=subprocess.STDOUT))
        if dep.distributed:
            wlog = (log_dir / f"{dep.name}-worker.log").open("wb")
            logs.append(wlog)
            procs.append(subprocess.Popen(
                [*CLI, "worker", "--concurrency", str(dep.workers), "--loglevel", "WARNING"],
                cwd=ROOT, env=dep.env, stdout=wlog, stderr=subprocess.STDOUT))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                raise RuntimeError(f"{dep.name} did not start; see {log_dir}")
            time.sleep(0.3)
        yield base, procs
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=40)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in logs:
            log.close()


def pool_processes(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    """The processes that screen: Celery's prefork pool children (not the API, not the
    Celery main process or beat)."""
    found = []
    for top in procs:
        for pid in children(top.pid):
            try:
                line = cmdline(pid)
            except OSError:
                continue
            if "services.cli" in line and "worker" in line:
                found.append(pid)
    # The Celery main process is the parent of the pool children; keep the leaves.
    leaves = [p for p in found if not any(c in found for c in children(p))]
    return leaves or found


def setup_org(env: dict[str, str], base: str) -> dict[str, dict[str, str]]:
    cli(env, "org", "create", "bench", "--name", "Bench School", "--policy", str(POLICY))
    tokens = {}
    for role in ("slt", "staff"):
        secret = cli(env, "token", "create", "--org", "bench", "--role", role, "--name",
                     role).strip().splitlines()[-1]
        tokens[role] = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=base, timeout=120) as http:
        for n, person in enumerate(sorted((FACES / "enrol").iterdir())):
            given, _, family = person.name.replace("_", " ").title().partition(" ")
            r = http.post("/api/v1/pupils", headers=tokens["slt"], json={
                "external_id": f"UPN{n:04d}", "given_name": given,
                "family_name": family or given, "year_group": "Year 5"})
            r.raise_for_status()
            pid = r.json()["id"]
            http.post(f"/api/v1/pupils/{pid}/biometric-consent", headers=tokens["slt"],
                      json={"status": "granted", "by": "parent", "evidence_ref": "bench"}
                      ).raise_for_status()
            for photo in sorted(person.iterdir()):
                http.post(f"/api/v1/pupils/{pid}/reference-photos", headers=tokens["slt"],
                          files={"file": (photo.name, photo.read_bytes())}).raise_for_status()
            http.put(f"/api/v1/pupils/{pid}/consents/website", headers=tokens["slt"], json={
                "status": "granted", "given_by": "guardian", "evidence_ref": "bench"}
                ).raise_for_status()
    return tokens


def upload(http: httpx.Client, staff: dict[str, str], path: Path) -> str:
    r = http.post("/api/v1/media", headers=staff,
                  data={"event": "Bench", "purpose": "publicity", "device": "school"},
                  files={"file": (path.name, path.read_bytes())})
    r.raise_for_status()
    return str(r.json()["id"])


def wait_all(http: httpx.Client, slt: dict[str, str], ids: dict[str, float],
             timeout: float = 900) -> dict[str, tuple[float, str]]:
    """Poll until every medium has its final status: id -> (seconds since its upload
    began, status). Polls every 50 ms, so latencies are good to about that."""
    done: dict[str, tuple[float, str]] = {}
    deadline = time.monotonic() + timeout
    while len(done) < len(ids):
        for media_id, started in ids.items():
            if media_id in done:
                continue
            status = http.get(f"/api/v1/media/{media_id}", headers=slt).json()["status"]
            if status in DONE:
                done[media_id] = (time.perf_counter() - started, status)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(ids) - len(done)} media never finished")
        time.sleep(0.05)
    return done


def claims(database_url: str, ids: list[str]) -> dict[str, tuple[float, float, float]]:
    """id -> (row written, claimed, screening seconds), as Unix times and seconds, from the
    database: the first `media.screened` of each (a re-screen is not a claim)."""
    engine = create_engine(database_url, poolclass=NullPool)
    with engine.connect() as conn:
        media = {str(i).replace("-", ""): (c, sc) for i, c, sc in conn.execute(text(
            "SELECT id, created_at, screened_at FROM media")).all()}
        events = conn.execute(text(
            "SELECT target, details FROM audit_events WHERE action = 'media.screened' "
            "ORDER BY id")).all()
    engine.dispose()
    wanted = {i.replace("-", ""): i for i in ids}
    out: dict[str, tuple[float, float, float]] = {}
    for target, details in events:
        key = str(target).removeprefix("media:").replace("-", "")
        if key not in wanted or wanted[key] in out:
            continue
        if isinstance(details, str):
            details = json.loads(details)
        seconds = float(details.get("seconds", 0.0))
        created, screened = media[key]
        # screened_at is the newest screening: right while each is screened once.
        claimed = _as_dt(screened).timestamp() - seconds
        out[wanted[key]] = (_as_dt(created).timestamp(), claimed, seconds)
    return out


def claim_delays(database_url: str, ids: list[str]) -> tuple[list[float], list[float]]:
    """(row written -> claim, claim -> saved) in seconds."""
    found = claims(database_url, ids)
    return ([c - w for w, c, _ in found.values()], [s for _, _, s in found.values()])


def _as_dt(value: Any) -> Any:
    from datetime import UTC, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def idle_probe(dep: Deployment, base: str, tokens: dict[str, dict[str, str]],
               photos: list[Path], n: int) -> tuple[list[float], list[float]]:
    """Upload one photo at a time to an idle worker. Claim delays in seconds after the
    media row was written (an upper bound on "after commit": the row is written before
    the object is stored and the transaction commits) and after the client had its 202
    (a lower bound: the commit came before the answer; negative if the worker was faster
    than the answer's way back)."""
    answered: dict[str, float] = {}
    with httpx.Client(base_url=base, timeout=120) as http:
        for path in photos[:n]:
            time.sleep(1.3)  # let the worker fall idle and the transport poll again
            media_id = upload(http, tokens["staff"], path)
            answered[media_id] = time.time()
            wait_all(http, tokens["slt"], {media_id: time.perf_counter()})
    found = claims(dep.database_url, list(answered))
    return ([c - w for w, c, _ in found.values()],
            [found[i][1] - answered[i] for i in found])


def service_run(dep: Deployment, base: str, procs: list[subprocess.Popen[bytes]],
                tokens: dict[str, dict[str, str]], photos: list[Path]) -> ServiceRun:
    """Upload the whole set as fast as the API takes it, then wait for every decision."""
    with httpx.Client(base_url=base, timeout=300) as http:
        started: dict[str, float] = {}
        t0 = time.perf_counter()
        for path in photos:
            begin = time.perf_counter()
            started[upload(http, tokens["staff"], path)] = begin
            if os.environ.get("BENCH_DEBUG"):
                print(f"upload {path.name}: {begin - t0:.2f} .. {time.perf_counter() - t0:.2f}",
                      flush=True)
        done = wait_all(http, tokens["slt"], started)
        wall = max(begin + lat for (lat, _), begin in
                   ((done[i], started[i]) for i in started)) - t0
    delays, screening = claim_delays(dep.database_url, list(started))
    # The pool's children are the largest; the others are Celery's main process and beat.
    rss = sorted((peak_rss_mib(p) for p in pool_processes(procs)), reverse=True)[:dep.workers]
    statuses: dict[str, int] = {}
    for _, status in done.values():
        statuses[status] = statuses.get(status, 0) + 1
    return ServiceRun(dep.name, dep.workers, len(photos), wall,
                      sorted(lat for lat, _ in done.values()), delays, screening, rss,
                      statuses)


# ------------------------------------------------------------------------ deployments


def embedded(data_dir: Path) -> Deployment:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTGATE_")}
    env["CONSENTGATE_DATA_DIR"] = str(data_dir)
    return Deployment("embedded", env, 1, False, f"sqlite:///{data_dir / 'consentgate.db'}")


def distributed(workers: int, database_url: str, broker_url: str, s3: str,
                data_dir: Path, key: str) -> Deployment:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTGATE_")}
    env.update({
        "CONSENTGATE_ENVIRONMENT": "production",
        "CONSENTGATE_DATABASE_URL": database_url,
        "CONSENTGATE_BROKER_URL": broker_url,
        "CONSENTGATE_STORAGE_BACKEND": "minio",
        "CONSENTGATE_MINIO_ENDPOINT": s3,
        "CONSENTGATE_MINIO_ACCESS_KEY": "bench",
        "CONSENTGATE_MINIO_SECRET_KEY": "bench-secret-123",
        "CONSENTGATE_MINIO_BUCKET": "consentgate-bench",
        "CONSENTGATE_MINIO_REGION": "us-east-1",
        "CONSENTGATE_TEMPLATE_KEY": key,
        "CONSENTGATE_DATA_DIR": str(data_dir),
    })
    return Deployment(f"distributed-{workers}", env, workers, True, database_url)


def reset_distributed(database_url: str, broker_url: str, s3: str) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    admin = create_engine(url.set(database="postgres"), poolclass=NullPool,
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"),
                        {"d": url.database}).first() is None:
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    engine = create_engine(database_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    from models.migrate import upgrade

    upgrade(database_url)
    redis.Redis.from_url(broker_url).flushdb()
    from storage.minio_store import MinioStore, make_client

    client = make_client(s3, "bench", "bench-secret-123", region="us-east-1", retries=0)
    if client.bucket_exists("consentgate-bench"):
        for obj in client.list_objects("consentgate-bench", recursive=True,
                                       include_version=True):
            client.remove_object("consentgate-bench", obj.object_name or "",
                                 version_id=obj.version_id)
    store = MinioStore(client, "consentgate-bench", create_bucket=True)
    store.enable_versioning()


# ------------------------------------------------------------------------ the report


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


# Fixed notes under the generated tables: figures from before the change they measure.
NOTES = [
    "With kombu's default polling interval (1 s; services/core/embedded_broker.py now "
    "polls every 50 ms, everything else as in the table above), the same idle probe on "
    "the embedded set-up, 6 uploads on this machine at load about 10, "
    "measured a claim 0.517 s (median; max 6.541 s) after the row was written and 0.471 s "
    "(max 6.493 s) after the 202. Between the tasks of a queued burst there is no longer "
    "an idle gap: each claim follows the previous save within the polling interval.",
    "",
    "Not met: the issue's goal of 3x the CLI on the service path. The API's work per "
    "upload shares the 2 cores with the workers, and other jobs loaded this machine "
    "(load 6-13 during this run); and in a "
    "queued burst the per-photo wall time is well above the screening's own p50 seconds, a "
    "gap this bench does not yet break down by task (review pictures of needs_review "
    "media, the gate's re-decision after each screening, the uploads' decode).",
    "",
]


def section(runs: list[tuple[ServiceRun, float]],
            probes: dict[str, tuple[list[float], list[float]]],
            cli_times: list[float], args: argparse.Namespace, seconds: float) -> list[str]:
    load = os.getloadavg()[0]
    lines = [
        SECTION, "",
        f"Produced by `.venv/bin/python bench/service_bench.py` (`make bench`) in "
        f"{seconds:.0f} s on {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; load average at the end {load:.2f}. The machine was "
        "shared with other jobs, so absolute times are noisy; the ratios come from "
        "face_recognition CLI runs interleaved with the service runs of the same set.",
        "",
        f"{runs[0][0].photos} photos (of the event photos of shared/faces and "
        f"{args.variants} re-encoded variants of each, all different bytes; the first "
        f"{args.probe} went to the idle probe below), uploaded over HTTP as fast as the "
        "API takes them; six pupils enrolled "
        "with consent (the CLI gets the same enrol/ photos as known people). Latency is "
        "from the start of a medium's upload to its final status as a client polling "
        "every 50 ms sees it. CLI: `face_recognition --cpus 2 known/ photos/`, "
        f"timed {len(cli_times)} times: " + ", ".join(f"{t:.1f} s" for t in cli_times) + ".",
        "",
        "| set-up | worker processes | wall time, s | photos/s | x the CLI | latency p50, s "
        "| latency p95, s | claim after upload p50 / p95, s | screening p50, s "
        "| peak RSS per worker process, MiB | outcomes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run, cli_s in runs:
        lines.append(
            f"| {run.name} | {run.workers} | {run.wall_s:.1f} | {run.photos / run.wall_s:.2f} "
            f"| {cli_s / run.wall_s:.2f}x | {pct(run.latencies, 0.5):.2f} "
            f"| {pct(run.latencies, 0.95):.2f} | {pct(run.claim_delays, 0.5):.3f} / "
            f"{pct(run.claim_delays, 0.95):.3f} | {pct(run.screening_s, 0.5):.2f} | "
            + ", ".join(f"{m:.0f}" for m in run.peak_rss_mib)
            + " | " + ", ".join(f"{k} {v}" for k, v in sorted(run.statuses.items())) + " |")
    lines += [
        "",
        "Claim after upload, with the whole set queued, includes waiting behind other "
        "photos. With the worker idle (one upload at a time, each after the last one's "
        "decision):",
        "",
        "| set-up | uploads | claim after the row was written: median / max, s "
        "| claim after the client had its 202: median / max, s |",
        "|---|---|---|---|",
    ]
    for name, (written, answered) in probes.items():
        lines.append(f"| {name} | {len(written)} | {statistics.median(written):.3f} / "
                     f"{max(written):.3f} | {statistics.median(answered):.3f} / "
                     f"{max(answered):.3f} |")
    lines += [
        "",
        "The commit lies between the two: the media row is written (`created_at`) before "
        "the original is stored and the transaction commits, and the 202 leaves after the "
        "commit. The claim is `screened_at` minus the screening's own `seconds` (audit "
        "event `media.screened`); every time is from the database or this machine's clock.",
        "",
        *NOTES,
    ]
    return lines


def write_report(lines: list[str]) -> None:
    text_now = REPORT.read_text() if REPORT.exists() else ""
    if SECTION in text_now:
        before, _, rest = text_now.partition(SECTION)
        after = rest[rest.find("\n## ") + 1:] if "\n## " in rest else ""
        text_now = before.rstrip() + "\n\n" + "\n".join(lines) + ("\n" + after if after
                                                                  else "")
    else:
        text_now = text_now.rstrip() + "\n\n" + "\n".join(lines)
    REPORT.write_text(text_now.rstrip() + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", type=int, default=2,
                        help="re-encoded copies of each event photo (default 2)")
    parser.add_argument("--probe", type=int, default=6,
                        help="uploads of the idle-worker claim probe (default 6)")
    parser.add_argument("--only", choices=["embedded", "distributed"], default=None)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    if not FACES.is_dir():
        sys.exit("../shared/faces not found; run `make test-data`")
    database_url = os.environ.get(
        "CONSENTGATE_BENCH_DATABASE_URL",
        "postgresql+psycopg://postgres@127.0.0.1:5432/consentgate_bench")
    broker_url = os.environ.get("CONSENTGATE_BENCH_BROKER_URL", "redis://127.0.0.1:6379/15")
    began = time.perf_counter()
    runs: list[tuple[ServiceRun, float]] = []
    probes: dict[str, tuple[list[float], list[float]]] = {}
    cli_times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="cg-service-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "photos").mkdir()
        photos = photo_set(tmp / "photos", args.variants)
        known = known_people(tmp / "known")
        # The probe uploads the first few; the timed runs (and the CLI) get the rest.
        timed = photos[args.probe:]
        (tmp / "timed").mkdir()
        for path in timed:
            (tmp / "timed" / path.name).symlink_to(path)
        cli_times.append(run_face_recognition_cli(known, tmp / "timed"))
        deployments: list[Deployment] = []
        if args.only in (None, "embedded"):
            deployments.append(embedded(tmp / "embedded"))
        server = None
        if args.only in (None, "distributed"):
            import logging

            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.WARNING)
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            key = Fernet.generate_key().decode()
            for workers in (1, 2):
                deployments.append(distributed(workers, database_url, broker_url,
                                               f"{host}:{port}", tmp / f"d{workers}", key))
        try:
            for dep in deployments:
                if dep.distributed:
                    reset_distributed(database_url, broker_url,
                                      dep.env["CONSENTGATE_MINIO_ENDPOINT"])
                with running(dep, tmp) as (base, procs):
                    tokens = setup_org(dep.env, base)
                    probes[dep.name] = idle_probe(dep, base, tokens, photos, args.probe)
                    run = service_run(dep, base, procs, tokens, timed)
                cli_times.append(run_face_recognition_cli(known, tmp / "timed"))
                runs.append((run, (cli_times[-2] + cli_times[-1]) / 2))
                print(f"{dep.name}: {run.wall_s:.1f} s for {run.photos} photos, "
                      f"{runs[-1][1] / run.wall_s:.2f}x the CLI; idle claim median "
                      f"{statistics.median(probes[dep.name][0]):.3f} s", flush=True)
        finally:
            if server is not None:
                server.stop()
    lines = section(runs, probes, cli_times, args, time.perf_counter() - began)
    print("\n".join(lines))
    if not args.no_report:
        write_report(lines)


if __name__ == "__main__":
    main()

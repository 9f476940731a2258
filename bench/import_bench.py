"""Register import at school scale: the 600-pupil MIS import (each header style, re-import,
--sync), bulk enrolment photos, and the smallest reference photo that enrols.

    .venv/bin/python bench/import_bench.py [--report bench/REPORT.md] [--rows 600]

Runs on the embedded backend (SQLite, filesystem store) in a temporary data directory,
and on PostgreSQL when one is reachable (CONSENTGATE_BENCH_DATABASE_URL, default
postgresql+psycopg://postgres@127.0.0.1:5432/consentgate_bench; its schema is migrated
and each run uses fresh organisations). The section "Register import" of the report is
replaced (or appended); the rest of the file is left as it is, so this runs after
screen_bench.py in `make bench`. A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402
from sqlalchemy import create_engine, event, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from tests.imports.support import make_csv, make_upn  # noqa: E402

FACES = ROOT.parent / "shared" / "faces"
SECTION = "## Register import"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/consentgate_bench"


class Counter:
    """SQL statements sent, per timed step (round trips, not rows)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, *_: Any) -> None:
        self.n += 1


COUNTER = Counter()


@event.listens_for(Engine, "before_cursor_execute")
def _count(*args: Any) -> None:
    COUNTER(*args)


def configure(data_dir: Path, database_url: str | None) -> None:
    os.environ["CONSENTGATE_DATA_DIR"] = str(data_dir)
    os.environ.pop("CONSENTGATE_DATABASE_URL", None)
    os.environ.pop("CONSENTGATE_BROKER_URL", None)
    os.environ["CONSENTGATE_STORAGE_BACKEND"] = "filesystem"
    if database_url:
        os.environ["CONSENTGATE_DATABASE_URL"] = database_url
    from models.migrate import upgrade
    from services.core import runtime
    from services.core.config import get_settings
    from services.imports import photos, pupils  # noqa: F401 - imported before any timing

    runtime.reset()
    data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(get_settings().resolved_database_url)


@contextmanager
def operator(slug: str) -> Iterator[tuple[Any, Any]]:
    """A write transaction and an admin principal of a fresh organisation."""
    from models.db import transaction
    from models.orm import Role
    from models.repositories.organisations import OrganisationRepository
    from services.core import runtime
    from services.core.auth import Principal
    from services.core.policy import DEFAULT_POLICY

    with transaction(runtime.sessions()) as session:
        repo = OrganisationRepository(session)
        org = repo.get_by_slug(slug) or repo.create(slug, slug, DEFAULT_POLICY.model_dump(
            mode="json"))
        yield session, Principal(token_id=uuid.UUID(int=0), org=org, role=Role.ADMIN,
                                 name="bench")


def timed_import(slug: str, data: bytes, *, sync: bool = False) -> tuple[float, int, Any]:
    from services.core.config import get_settings
    from services.imports import pupils

    COUNTER.n = 0
    start = time.perf_counter()
    with operator(slug) as (session, principal):
        result = pupils.import_pupils(session, get_settings(), principal, data, sync=sync)
    return time.perf_counter() - start, COUNTER.n, result


def bench_pupils(label: str, rows: int, run: str) -> list[str]:
    out = []
    for style in ("sims", "arbor", "consentgate"):
        slug = f"bench-{run}-{style}"
        data = make_csv(style, range(rows))
        first, q1, r1 = timed_import(slug, data)
        again, q2, r2 = timed_import(slug, data)
        leavers = max(1, rows // 20)
        synced, q3, r3 = timed_import(slug, make_csv(style, range(leavers, rows)), sync=True)
        out.append(
            f"| {label} | {style} | {rows} | {first:.2f} | {q1} | {r1.consents_recorded} "
            f"| {again:.2f} | {q2} | {r2.unchanged} | {synced:.2f} ({r3.left} left) | {q3} |")
    return out


def bench_photos(run: str) -> tuple[list[str], dict[str, Any]]:
    from services.core import runtime
    from services.core.config import get_settings
    from services.imports import photos

    enrol = FACES / "enrol"
    files = sorted(p for p in enrol.rglob("*") if p.suffix in (".jpg", ".png"))
    # Pupils with i % 3 == 0 have biometric consent in the generated file.
    indices = [i * 3 for i in range(len(files) - 2)] + [1, 2]
    slug = f"bench-{run}-photos"
    timed_import(slug, make_csv("sims", range(max(indices) + 1)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for i, path in zip(indices, files, strict=True):
            archive.writestr(f"{make_upn(i)}{path.suffix}", path.read_bytes())
    entries = photos.entries_from_zip(buf.getvalue())
    rows = []
    for attempt in ("first", "again (already enrolled)"):
        start = time.perf_counter()
        with operator(slug) as (session, principal):
            outcome = photos.import_photos(session, runtime.store(), get_settings(),
                                           principal, entries)
        took = time.perf_counter() - start
        c = outcome.counts()
        rows.append(f"| {attempt} | {len(entries)} | {c['enrolled']} | {c['refused']} "
                    f"| {c['already_enrolled']} | {took:.2f} | {took / len(entries):.2f} |")
    return rows, {"files": len(entries)}


def smallest_photo() -> tuple[list[str], int | None]:
    """MIS-style head-and-shoulders crops (face about 40% of the photo's height), each
    identity, shrunk until enrolment refuses them."""
    from services.biometrics import enrol
    from services.biometrics.gallery import engine_for
    from services.core.config import get_settings
    from services.core.errors import InvalidInput
    from workers.engine.imaging import decode_image

    settings = get_settings()
    engine = engine_for(settings)
    crops = []
    for path in sorted((FACES / "enrol").rglob("*_a.*")):
        data = path.read_bytes()
        found = engine.find_faces(decode_image(data, max_pixels=settings.max_image_pixels))
        if not found.faces:
            continue
        top, right, bottom, left = max(found.faces, key=lambda f: f.height_px).box
        h = bottom - top
        cx, cy = (left + right) / 2, (top + bottom) / 2
        img = Image.open(path).convert("RGB")
        box = (int(cx - 1.0 * h), int(cy - 1.1 * h), int(cx + 1.0 * h), int(cy + 1.4 * h))
        crops.append((path, img.crop(box)))
    heights = list(range(120, 401, 20))
    table = []
    smallest: int | None = None
    for height in heights:
        ok = 0
        faces_px = []
        for _, crop in crops:
            small = crop.resize((round(crop.width * height / crop.height), height),
                                Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            small.save(buf, "JPEG", quality=85)
            try:
                enrol.compute_template(settings, buf.getvalue())
                ok += 1
            except InvalidInput as exc:
                if exc.details.get("face_px"):
                    faces_px.append(int(exc.details["face_px"]))
        width = round(crops[0][1].width * height / crops[0][1].height)
        table.append(f"| {width}x{height} | {ok} of {len(crops)} | "
                     f"{', '.join(map(str, sorted(faces_px))) or '-'} |")
        if ok == len(crops) and smallest is None:
            smallest = height
    return table, smallest


def postgres_url() -> str | None:
    url = os.environ.get("CONSENTGATE_BENCH_DATABASE_URL", DEFAULT_PG)
    try:
        admin = create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = url.rsplit("/", 1)[1]
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                {"n": name}).first():
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return url
    except Exception as exc:  # no PostgreSQL here: the embedded figures only
        print(f"PostgreSQL not reachable ({type(exc).__name__}); embedded backend only")
        return None


def write_section(report: Path, section: str) -> None:
    existing = report.read_text() if report.exists() else ""
    if SECTION in existing:
        head, _, rest = existing.partition(SECTION)
        tail = rest.split("\n## ", 1)
        existing = head.rstrip() + ("\n\n## " + tail[1] if len(tail) > 1 else "")
    report.write_text(existing.rstrip() + "\n\n" + section.rstrip() + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--report", type=Path, default=ROOT / "bench" / "REPORT.md")
    parser.add_argument("--rows", type=int, default=600)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    load = os.getloadavg()[0]
    started = time.perf_counter()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    pupil_rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        configure(Path(tmp) / "embedded", None)
        pupil_rows += bench_pupils("embedded (SQLite)", args.rows, run)
        photo_rows, _ = bench_photos(run)
        size_rows, smallest = smallest_photo()
        pg = postgres_url()
        if pg:
            configure(Path(tmp) / "pg", pg)
            pupil_rows += bench_pupils("PostgreSQL", args.rows, run)
    from services.biometrics.gallery import engine_for
    from services.core.config import get_settings

    min_face = engine_for(get_settings()).config.enrol_min_face_px
    took = time.perf_counter() - started
    leavers = max(1, args.rows // 20)
    parts = [
        SECTION,
        f"Produced by `.venv/bin/python bench/import_bench.py` (`make bench`) in {took:.0f} s "
        f"on {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, commit {commit}. Load average before the run: "
        f"{load:.2f}.",
        f"### MIS import, {args.rows} pupils",
        "Generated exports (tests/imports/support.py): five consent columns (granted, "
        "refused, withdrawn, blank), a biometric column on a third of the pupils, given_by "
        "and evidence_ref. One transaction each, through "
        "`services.imports.pupils.import_pupils` (what the CLI and "
        "`POST /api/v1/imports/pupils` call). *Statements* counts SQL statements sent (an "
        "executemany, one bulk INSERT per table, is one). "
        f"The sync step imports the file without its first {leavers} pupils with `--sync`: "
        "each leaver goes through the full leaver flow (templates erased, publications "
        "decided again), which is per pupil.",
        "| backend | header style | rows | import, s | statements | consents recorded "
        "| re-import, s | statements | unchanged | sync, s | statements |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(pupil_rows),
        "### Bulk enrolment photos",
        "The shared enrolment photos (../shared/faces/enrol) in a zip named by UPN; the last "
        "two pupils have no biometric consent and are refused without the engine running. "
        "Embedded backend, one process; the time is almost all the face engine (detection "
        "with rotations, then dlib's encoder, per photo).",
        "| run | files | enrolled | refused | already enrolled | total, s | s per file |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(photo_rows),
        "### Smallest reference photo that enrols",
        "MIS photos are small head-and-shoulders portraits. Each shared identity's `_a` "
        "photo cropped to that shape (face about 40% of the height, width 0.8 of the "
        "height), shrunk with Lanczos, saved as JPEG quality 85, then `compute_template` "
        "(the enrolment check). The engine needs the detected face to be at least "
        f"{min_face} px tall (`enrol_min_face_px`).",
        "| photo, px | enrolled | refused faces, detected height px |\n"
        "|---|---|---|\n" + "\n".join(size_rows),
        "**Smallest that enrolled every identity: "
        + (f"{smallest} px tall" if smallest else "none of these sizes")
        + "** (docs/import.md gives the advice).",
    ]
    section = "\n\n".join(parts) + "\n"
    write_section(args.report, section)
    print(section)


if __name__ == "__main__":
    main()

"""Screening throughput: ConsentGate's engine against the `face_recognition` CLI.

    .venv/bin/python bench/screen_bench.py [--faces ../shared/faces] [--rounds 2]

Both run in the same invocation on the same files, ../shared/faces/events:

* ours: decode_image + FaceEngine.screen_image, the worker's code path, with a gallery
  built from every enrol/ photo through the enrolment gate; once in one process (the
  detector on 2 threads) and once as 2 processes with 1 detector thread each, as a
  Celery worker with concurrency 2 would run;
* theirs: `face_recognition --cpus 2 <known> <events>`, with one photo per identity in a
  temporary known folder (HOG detector at 1 upsample on images shrunk to 1600 px,
  5-point landmarks, tolerance 0.6, no margin, no quality gate).

Model loading and gallery building are not timed for us. For the CLI, its fixed cost
(start-up, model loading in both pool workers, encoding the known photos) is measured
by running it on four small blank images and subtracted; the raw time is reported too.
Writes bench/REPORT.md.
This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workers.engine.engine import EngineConfig, FaceEngine  # noqa: E402
from workers.engine.imaging import decode_image  # noqa: E402
from workers.engine.match import Gallery  # noqa: E402
from workers.engine.types import GalleryEntry, ScreenedFace  # noqa: E402

MAX_PIXELS = 100_000_000
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


@dataclass(frozen=True)
class Timing:
    seconds: float
    images: int

    @property
    def per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("inf")


def event_files(faces: Path) -> list[Path]:
    return sorted(p for p in (faces / "events").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def build_gallery(engine: FaceEngine, faces: Path) -> Gallery:
    entries = []
    for folder in sorted((faces / "enrol").iterdir()):
        for path in sorted(folder.iterdir()):
            rgb = decode_image(path.read_bytes(), max_pixels=MAX_PIXELS)
            entries.append(GalleryEntry(folder.name, engine.reference_template(rgb)))
    return Gallery.from_entries(entries)


def screen_file(engine: FaceEngine, gallery: Gallery, path: Path) -> list[ScreenedFace]:
    rgb = decode_image(path.read_bytes(), max_pixels=MAX_PIXELS)
    return engine.screen_image(rgb, gallery)


_worker: tuple[FaceEngine, Gallery] | None = None


def _init_worker(faces: Path, warm: Path) -> None:
    global _worker
    engine = FaceEngine(EngineConfig(detector_threads=1))
    engine.warm_up()
    gallery = build_gallery(engine, faces)
    screen_file(engine, gallery, warm)
    _worker = (engine, gallery)


def _screen_in_worker(path: Path) -> int:
    assert _worker is not None
    return len(screen_file(_worker[0], _worker[1], path))


def _ready(_: int) -> int:
    time.sleep(0.05)
    return os.getpid()


def run_cli(known: Path, folder: Path) -> tuple[float, str]:
    cli = Path(sys.executable).parent / "face_recognition"
    start = time.perf_counter()
    proc = subprocess.run(
        [str(cli), "--cpus", "2", str(known), str(folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - start, proc.stdout


def known_folder(faces: Path, into: Path) -> None:
    for folder in sorted((faces / "enrol").iterdir()):
        first = sorted(folder.iterdir())[0]
        shutil.copy(first, into / f"{folder.name}{first.suffix}")


def parse_cli(stdout: str) -> dict[str, list[str]]:
    # Pool workers share stdout, so lines can run together; match path,name pairs.
    out: dict[str, list[str]] = {}
    for m in re.finditer(r"(/\S+?\.(?:jpe?g|png)),([A-Za-z_]+)", stdout, flags=re.IGNORECASE):
        out.setdefault(Path(m.group(1)).name, []).append(m.group(2))
    return out


def describe(found: list[ScreenedFace]) -> str:
    if not found:
        return "no faces"
    return ", ".join(
        f.pupil_id if f.status == "matched" and f.pupil_id else f.status for f in found
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the events")
    parser.add_argument("--report", type=Path, default=ROOT / "bench" / "REPORT.md")
    args = parser.parse_args()
    if not args.faces.is_dir():
        sys.exit(
            f"{args.faces} not found; run `make test-data` for how to get the public test images"
        )
    files = event_files(args.faces)
    cfg = EngineConfig()
    load_before = os.getloadavg()[0]

    engine = FaceEngine(EngineConfig(detector_threads=2))
    engine.warm_up()
    gallery = build_gallery(engine, faces=args.faces)
    screen_file(engine, gallery, files[0])  # first-run allocations, as in a warm worker
    decisions: dict[str, list[ScreenedFace]] = {}
    single: list[float] = []
    pooled: list[float] = []
    cli: list[float] = []
    fixed: list[float] = []
    stdout = ""
    ctx = mp.get_context("spawn")
    with (
        tempfile.TemporaryDirectory(prefix="cg-bench-") as tmp,
        ctx.Pool(2, initializer=_init_worker, initargs=(args.faces, files[0])) as pool,
    ):
        known, blanks, events = Path(tmp, "known"), Path(tmp, "blanks"), Path(tmp, "events")
        for d in (known, blanks, events):
            d.mkdir()
        known_folder(args.faces, known)
        for i in range(4):
            Image.new("RGB", (64, 48), (128, 128, 128)).save(blanks / f"blank{i}.png")
        for path in files:
            (events / path.name).symlink_to(path)
        # Every worker must have finished its initializer before anything is timed.
        while len(set(pool.map(_ready, range(8), chunksize=1))) < 2:
            time.sleep(0.1)
        # Rounds interleave the pipelines, so background load hits them alike; the best
        # round of each is compared.
        for _ in range(args.rounds):
            start = time.perf_counter()
            for path in files:
                decisions[path.name] = screen_file(engine, gallery, path)
            single.append(time.perf_counter() - start)
            start = time.perf_counter()
            pool.map(_screen_in_worker, files, chunksize=1)
            pooled.append(time.perf_counter() - start)
            fixed.append(run_cli(known, blanks)[0])
            seconds, stdout = run_cli(known, events)
            cli.append(seconds)
    cli_names = parse_cli(stdout)
    n = len(files)
    ours, pool_t = Timing(min(single), n), Timing(min(pooled), n)
    cli_raw = Timing(min(cli), n)
    cli_net = Timing(max(min(cli) - min(fixed), 1e-9), n)

    rows = [
        ("ConsentGate engine, 1 process (detector 2 threads)", ours, single),
        ("ConsentGate engine, 2 processes (detector 1 thread each)", pool_t, pooled),
        ("face_recognition CLI --cpus 2, fixed cost subtracted", cli_net, None),
        ("face_recognition CLI --cpus 2, as timed", cli_raw, cli),
    ]
    lines = [
        "# Screening benchmark",
        "",
        f"Generated by `bench/screen_bench.py` on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}: the {n} event photos, {args.rounds} interleaved "
        f"rounds, best round shown. CLI fixed cost (run on 4 blank 64x48 images): "
        f"{min(fixed):.2f} s. Load average before the run: {load_before:.2f}.",
        "",
        "| pipeline | best round, s | images/s | ms/image | all rounds, s |",
        "|---|---|---|---|---|",
    ]
    for name, t, all_rounds in rows:
        spread = ", ".join(f"{x:.2f}" for x in all_rounds) if all_rounds else "-"
        lines.append(
            f"| {name} | {t.seconds:.2f} | {t.per_second:.2f} | {1000 / t.per_second:.0f} "
            f"| {spread} |"
        )
    lines += [
        "",
        f"**Throughput ratio, ours / CLI (fixed cost subtracted): "
        f"{ours.per_second / cli_net.per_second:.2f}x in one process, "
        f"{pool_t.per_second / cli_net.per_second:.2f}x with 2 processes** "
        f"(against the CLI as timed: {ours.per_second / cli_raw.per_second:.2f}x and "
        f"{pool_t.per_second / cli_raw.per_second:.2f}x).",
        "",
        "The CLI does less per image: no quality gate, no second pass, and it names anyone",
        "within 0.6 with no margin rule. Decisions on the same files:",
        "",
        f"| photo | ConsentGate (threshold {cfg.threshold}, margin {cfg.margin}) "
        "| face_recognition CLI (tolerance 0.6) |",
        "|---|---|---|",
    ]
    for path in files:
        theirs = cli_names.get(path.name, ["(no output)"])
        lines.append(f"| {path.name} | {describe(decisions[path.name])} | {', '.join(theirs)} |")
    report = "\n".join(lines) + "\n"
    args.report.write_text(report)
    print(report)


if __name__ == "__main__":
    main()

"""Issue 9's done-when for video, through the whole service (real PostgreSQL, Redis
worker, S3): a generated clip with a consented pupil in every frame and a stranger who
appears only between the frames a 2 fps sampler would see is blocked, and its blurred
copy shows that stranger's face unblurred in no frame, as judged frame by frame by
dlib's HOG detector (not the engine's own CenterFace)."""

from __future__ import annotations

from pathlib import Path

import dlib
import numpy as np
import pytest
from fastapi.testclient import TestClient

from bench import synth
from tests.review.support import enrol
from tests.support import create_org, token, wait_screened
from workers.engine.engine import EngineConfig, get_engine
from workers.engine.imaging import iter_video_frames
from workers.engine.types import Box, box_iou

pytestmark = pytest.mark.faces

# 30 fps: a 2 fps sampler looks at frames 0, 15, 30 ...; the stranger is never there.
STRANGER_FRAMES = [*range(3, 13), *range(18, 28), *range(33, 43)]


def _clip(faces: Path, path: Path) -> dict[int, tuple[Box | None, Box | None]]:
    cuts = synth.cut_faces(faces, get_engine(EngineConfig()))
    pupil = next(c for c in cuts if c.person == "obama" and c.source.startswith("events/obama1"))
    stranger = next(c for c in cuts if c.person == "biden"
                    and c.source.startswith("enrol/biden/biden_a"))
    return synth.write_clip(path, pupil, stranger, b_frames=STRANGER_FRAMES, fps=30.0,
                            frames=60, fourcc="mp4v")


def _hog_faces(rgb: np.ndarray) -> list[Box]:
    detector = dlib.get_frontal_face_detector()
    # Upsampled once: the stranger is about 90 px tall at 640x360.
    return [(r.top(), r.right(), r.bottom(), r.left()) for r in detector(rgb, 1)]


def test_a_stranger_between_samples_is_blocked_and_blurred_in_every_frame_of_the_copy(
        client: TestClient, celery_worker: None, faces: Path, tmp_path: Path) -> None:
    create_org("show", policy="arts-service")
    slt, staff = token("show", "slt"), token("show", "staff")
    publisher = token("show", "publisher")
    enrol(client, slt, faces, {"obama": "granted"})
    truth = _clip(faces, tmp_path / "clip.mp4")
    r = client.post("/api/v1/media", headers=staff,
                    data={"event": "Summer show", "purpose": "publicity", "device": "school"},
                    files={"file": ("clip.mp4", (tmp_path / "clip.mp4").read_bytes())})
    assert r.status_code == 202, r.text
    media_id = r.json()["id"]
    body = wait_screened(client, slt, media_id, timeout=300)
    assert body["channels"]["website"]["allowed"] is False
    assert "faces_unknown" in [c["code"] for c in body["channels"]["website"]["reason_codes"]]
    r = client.post(f"/api/v1/media/{media_id}/publications", headers=publisher,
                    json={"channel": "website"})
    assert r.status_code == 409

    r = client.post(f"/api/v1/media/{media_id}/decisions", headers=slt, json={
        "kind": "redact", "channels": ["website"],
        "justification": "Blur the visitor who walks through the shot"})
    assert r.status_code == 201, r.text
    r = client.post(f"/api/v1/media/{media_id}/publications", headers=publisher,
                    json={"channel": "website", "redact": True})
    assert r.status_code == 201, r.text
    copy = tmp_path / "copy.webm"
    copy.write_bytes(client.get(r.json()["url"]).content)

    frames = 0
    pupil_seen = 0
    for index, rgb in iter_video_frames(copy):
        frames += 1
        pupil_box, stranger_box = truth[index]
        found = _hog_faces(np.ascontiguousarray(rgb))
        if stranger_box is not None:
            assert not any(box_iou(f, stranger_box) > 0.2 for f in found), index
        if pupil_box is not None and any(box_iou(f, pupil_box) > 0.2 for f in found):
            pupil_seen += 1
    assert frames == 60
    # The consented pupil is still there to see in the copy (HOG finds most frames).
    assert pupil_seen >= 40

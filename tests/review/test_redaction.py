"""Issue 4's done-when over the API, on PostgreSQL, Redis (real worker) and S3: a class
photo with one pupil without consent goes to the website as a blurred copy that the
engine finds no unblurred face in, with no metadata; and the blurred copy fails
closed when a face it should have blurred is still there."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import delete

from models.orm import Face
from services.core import runtime
from tests.flow import put_consent
from tests.review.support import (
    assert_no_metadata,
    audit_events,
    enrol,
    gallery,
    screen,
    size_of,
    tagged_photo,
)
from tests.support import create_org, token, wait_screened


def _upload_bytes(client: TestClient, staff: dict[str, str], name: str, data: bytes,
                  device: str = "school") -> str:
    r = client.post("/api/v1/media", headers=staff,
                    data={"event": "Summer fair", "purpose": "publicity", "device": device},
                    files={"file": (name, io.BytesIO(data))})
    assert r.status_code == 202, r.text
    media_id: str = r.json()["id"]
    return media_id


def test_class_photo_is_published_with_the_pupil_without_consent_blurred(
    client: TestClient, celery_worker: None, faces: Path
) -> None:
    create_org("fair", policy="arts-service")
    slt, staff = token("fair", "slt", "Mrs Head"), token("fair", "staff")
    publisher = token("fair", "publisher", "Website")
    ids = enrol(client, slt, faces, {"kit_harington": "granted", "rose_leslie": None})
    original = tagged_photo(faces / "events" / "kit_with_rose.jpg")
    media_id = _upload_bytes(client, staff, "kit_with_rose.jpg", original)
    body = wait_screened(client, slt, media_id)
    assert body["status"] in ("screened", "needs_review"), body
    by_pupil = {f["pupil_id"]: f for f in body["faces"]}
    assert by_pupil[ids["rose_leslie"]]["status"] == "unconsented"
    assert by_pupil[ids["kit_harington"]]["status"] == "consented"

    url = f"/api/v1/media/{media_id}/publications"
    r = client.post(url, headers=publisher, json={"channel": "website"})
    assert r.status_code == 409
    # The publisher is told why without the pupil being named (issue 12, least privilege).
    assert any(reason.startswith("a pupil: no consent") for reason in r.json()["reasons"])
    assert ids["rose_leslie"] not in r.text
    # A blurred copy is an SLT decision, whatever the policy says about plain approval.
    r = client.post(url, headers=publisher, json={"channel": "website", "redact": True})
    assert r.status_code == 409
    assert any("SLT approval" in reason for reason in r.json()["reasons"])

    why = "Fair photo for the website; Rose has no consent so her face is blurred."
    r = client.post(f"/api/v1/media/{media_id}/decisions", headers=slt,
                    json={"kind": "redact", "channels": ["website"], "justification": why})
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "in_force"
    # Approval of the blurred copy does not approve the original.
    r = client.post(url, headers=publisher, json={"channel": "website"})
    assert r.status_code == 409

    r = client.post(url, headers=publisher, json={"channel": "website", "redact": True})
    assert r.status_code == 201, r.text
    assert r.json()["redacted"] is True
    public = client.get(r.json()["url"])
    assert public.status_code == 200
    assert public.headers["content-type"] == "image/jpeg"
    published = public.content

    assert_no_metadata(published)
    # Orientation applied: the phone stored it sideways, the public copy is upright.
    stored_w, stored_h = size_of(original)
    assert size_of(published) == (stored_h, stored_w)

    gal = gallery(faces, ["kit_harington", "rose_leslie"])
    before = screen(original_upright(original), gal)
    assert {f.pupil_id for f in before if f.status == "matched"} >= {"rose_leslie",
                                                                     "kit_harington"}
    after = screen(published, gal)
    # Every face the engine finds in the public copy is Kit, recognised: Rose's face and
    # anything else without consent are blurred past detection.
    assert [(f.status, f.pupil_id) for f in after] == [("matched", "kit_harington")], after

    assert [e["channel"] for e in audit_events("publication.created")] == ["website"]
    decisions = audit_events("review.approved_blurred")
    assert decisions[0]["justification"] == why
    assert decisions[0]["actor"] == "slt:Mrs Head"
    created = audit_events("publication.created")[0]
    assert created["faces_blurred"] >= 1

    # Rose's consent coming and going does not matter: she is blurred in this copy.
    put_consent(client, slt, ids["rose_leslie"], "granted")
    put_consent(client, slt, ids["rose_leslie"], "withdrawn")
    assert client.get(r.json()["url"]).status_code == 200
    # Kit can be seen in it: his withdrawal takes it down at once.
    put_consent(client, slt, ids["kit_harington"], "withdrawn")
    assert client.get(r.json()["url"]).status_code == 410


def original_upright(tagged: bytes) -> bytes:
    """The tagged photo's pixels turned upright, as the engine sees them."""
    from workers.engine.imaging import decode_image, encode_clean_jpeg

    return encode_clean_jpeg(decode_image(tagged, max_pixels=100_000_000))


def test_a_face_the_screening_missed_stops_the_blurred_copy(
    client: TestClient, celery_worker: None, faces: Path
) -> None:
    create_org("fair", policy="arts-service")
    slt, staff = token("fair", "slt"), token("fair", "staff")
    ids = enrol(client, slt, faces, {"kit_harington": "granted", "rose_leslie": None})
    media_id = _upload_bytes(client, staff, "kit_with_rose.jpg",
                             (faces / "events" / "kit_with_rose.jpg").read_bytes())
    wait_screened(client, slt, media_id)
    # As if the detector had missed Rose at screening: nothing marks her face for blurring.
    with runtime.sessions().begin() as session:
        session.execute(delete(Face).where(Face.pupil_id == ids["rose_leslie"]))
    r = client.post(f"/api/v1/media/{media_id}/decisions", headers=slt,
                    json={"kind": "redact", "channels": ["website"],
                          "justification": "Blur whoever has no consent, please."})
    assert r.status_code == 201, r.text

    r = client.post(f"/api/v1/media/{media_id}/publications", headers=slt,
                    json={"channel": "website", "redact": True})
    assert r.status_code == 409, r.text
    assert any("without consent for website" in reason for reason in r.json()["reasons"])
    listed = client.get("/api/v1/publications", headers=slt).json()
    assert listed == []
    assert list(runtime.store().list_keys("published/")) == []


def test_a_video_is_published_blurred_as_a_clean_re_encoded_copy(
    client: TestClient, celery_worker: None, faces: Path
) -> None:
    create_org("show", policy="arts-service")
    slt, staff = token("show", "slt"), token("show", "staff")
    enrol(client, slt, faces, {"lin_manuel_miranda": "granted"})
    clip = faces / "video" / "short_hamilton_clip.mp4"
    media_id = _upload_bytes(client, staff, clip.name, clip.read_bytes())
    body = wait_screened(client, slt, media_id)
    assert body["channels"]["website"]["allowed"] is False

    # SLT see each face cropped from its own frame, and the busiest frame whole.
    review = client.get(f"/api/v1/review/{media_id}", headers=slt).json()
    last = max(review["faces"], key=lambda f: f["frame"])
    assert last["frame"] > 0
    for crop_url in (last["crop_url"], review["faces"][0]["crop_url"], review["picture_url"]):
        crop = client.get(crop_url, headers=slt)
        assert crop.status_code == 200 and crop.content[:2] == b"\xff\xd8"
    # Without SLT approval of a blurred copy, none goes out.
    r = client.post(f"/api/v1/media/{media_id}/publications", headers=slt,
                    json={"channel": "website", "redact": True})
    assert r.status_code == 409
    r = client.post(f"/api/v1/media/{media_id}/decisions", headers=slt,
                    json={"kind": "redact", "channels": ["website"],
                          "justification": "Blur the audience, keep the performer."})
    assert r.status_code == 201, r.text
    r = client.post(f"/api/v1/media/{media_id}/publications", headers=slt,
                    json={"channel": "website", "redact": True})
    assert r.status_code == 201, r.text
    assert r.json()["url"].endswith(".webm") and r.json()["redacted"] is True
    public = client.get(r.json()["url"])
    assert public.headers["content-type"] == "video/webm"
    data = public.content
    assert data[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a WebM container, built anew
    assert data != clip.read_bytes()
    assert _frames(data) == body_frames(client, slt, media_id)


def body_frames(client: TestClient, slt: dict[str, str], media_id: str) -> int:
    """Every frame screening decoded goes into the copy, no more, no fewer."""
    from sqlalchemy import text

    with runtime.sessions()() as session:
        frames: int = session.execute(text("SELECT frames_screened FROM media WHERE id = :m"),
                                      {"m": media_id}).scalar_one()
    return frames


def _frames(data: bytes) -> int:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".webm") as fh:
        fh.write(data)
        fh.flush()
        capture = cv2.VideoCapture(fh.name, cv2.CAP_FFMPEG)
        count = 0
        while capture.grab():
            count += 1
        capture.release()
    return count


def test_the_blurred_faces_are_beyond_recognition_at_published_size(faces: Path) -> None:
    """The blur itself: the face region keeps only a few colour blocks' worth of detail."""
    from services.publish.redact import blur_regions, grow
    from workers.engine.imaging import decode_image

    rgb = decode_image((faces / "events" / "kit_with_rose.jpg").read_bytes(),
                       max_pixels=100_000_000)
    h, w = rgb.shape[:2]
    box = (110, 156, 214, 81)  # Rose's face, top/right/bottom/left
    top, right, bottom, left = grow(box, w, h)
    assert top < 110 - 50 and left < 81 - 25 and right > 156 + 25 and bottom > 214 + 25
    out = blur_regions(rgb, [(top, right, bottom, left)])
    face = out[110:214, 81:156].astype(np.float64)
    # Fine detail (eyes, mouth) is what identifies; its energy is all but gone.
    lap_before = cv2.Laplacian(rgb[110:214, 81:156].astype(np.float64), cv2.CV_64F).var()
    lap_after = cv2.Laplacian(face, cv2.CV_64F).var()
    assert lap_after < lap_before / 50
    # Outside the grown box nothing changed.
    assert np.array_equal(out[:, right + 1:], rgb[:, right + 1:])

"""Issue 9's done-when for large photos, through the whole service: a 12 MP photo with
one large face of a pupil who has consent and strangers 20 to 32 px tall (composites
from bench/synth.py, public adults only). Every stranger is found by the real worker and
the photo is blocked; before, the first pass at 1600 px found the large face and the
strangers were never looked for, so the photo published at full resolution."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from bench import synth
from tests.review.support import enrol
from tests.support import create_org, token, wait_screened
from workers.engine.engine import EngineConfig, get_engine
from workers.engine.types import box_iou

pytestmark = pytest.mark.faces

HEIGHTS = [20, 22, 24, 26, 28, 30, 32]


def test_strangers_20_to_32_px_beside_a_consented_pupil_block_a_12_mp_photo(
        client: TestClient, celery_worker: None, faces: Path) -> None:
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt"), token("school", "staff")
    cuts = synth.cut_faces(faces, get_engine(EngineConfig()))
    image, large, strangers = synth.large_photo(cuts, np.random.default_rng(3),
                                                small_heights=HEIGHTS, busy=False)
    big = next(c for c in cuts if c.enrolled)
    ids = enrol(client, slt, faces, {big.person: "granted"})
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=92)
    r = client.post("/api/v1/media", headers=staff,
                    data={"event": "Sports day", "purpose": "publicity", "device": "school"},
                    files={"file": ("field.jpg", buf.getvalue())})
    assert r.status_code == 202, r.text
    body = wait_screened(client, slt, r.json()["id"], timeout=300)

    def found(box: tuple[int, int, int, int]) -> list[dict[str, object]]:
        return [f for f in body["faces"] if box_iou(tuple(f["box"]), box) > 0.3]

    assert [f["pupil_id"] for f in found(large)] == [ids[big.person]]
    for height, box in zip(HEIGHTS, strangers, strict=True):
        assert [f["status"] for f in found(box)] == ["uncertain"], height
    website = body["channels"]["website"]
    assert website["allowed"] is False
    assert any(c["code"] == "faces_uncertain" and c["count"] >= len(HEIGHTS)
               for c in website["reason_codes"])

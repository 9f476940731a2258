"""GET /api/v1/review is the work queue of the review page: waiting, decided or all, with
the same filters, search and sorts, paged by limit and offset (bounded), and the fields
older clients read (media, blocked_channels, flags) kept."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from tests.support import create_org, token, wait_screened


def _scene(n: int) -> bytes:
    """A face-free picture, different for every n."""
    h, w = 200, 260
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 255 // w + n * 37) % 256, (y * 255 // h + n * 23) % 256,
                    ((x + y) * 127 // (w + h) + n * 11) % 256], axis=-1)
    buf = io.BytesIO()
    Image.fromarray(img.astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _upload(client: TestClient, who: dict[str, str], name: str, n: int, event: str,
            purpose: str) -> str:
    r = client.post("/api/v1/media", headers=who,
                    data={"event": event, "purpose": purpose, "device": "school"},
                    files={"file": (name, _scene(n), "image/jpeg")})
    assert r.status_code == 202, r.text
    media_id: str = r.json()["id"]
    return media_id


def _queue(client: TestClient, slt: dict[str, str], **params: Any) -> tuple[list[str], int]:
    r = client.get("/api/v1/review", headers=slt, params=params)
    assert r.status_code == 200, r.text
    return [i["media"]["id"] for i in r.json()], int(r.headers["x-total-count"])


def test_the_api_queue_filters_pages_and_empties_as_slt_decide(
    client: TestClient, celery_worker: None,
) -> None:
    create_org("school", policy="primary-school")
    slt = token("school", "slt", "Mrs Khan")
    jones, patel = token("school", "staff", "Mr Jones"), token("school", "staff", "Ms Patel")
    sports = [_upload(client, jones, f"sports_{n}.jpg", n, "Sports day",
                      "extra-school activities")
              for n in range(3)]
    fair = [_upload(client, patel, f"fair_{n}.jpg", 10 + n, "Summer fair", "curriculum")
            for n in range(2)]
    for media_id in sports + fair:
        wait_screened(client, slt, media_id)

    r = client.get("/api/v1/review", headers=slt)
    assert r.status_code == 200, r.text
    items = {i["media"]["id"]: i for i in r.json()}
    assert set(items) == set(sports + fair) and r.headers["x-total-count"] == "5"
    one = items[sports[0]]
    # What older clients read is still there.
    assert one["media"]["id"] == sports[0] and one["media"]["status"] == "screened"
    assert "website" in one["blocked_channels"]
    assert isinstance(one["flags"], list)
    # The queue's view: uploaded for its purpose's channels (extra-school activities:
    # website, newsletter, display in the policy's order), blocked there, so waiting.
    assert one["file_name"] == "sports_0.jpg" and one["uploaded_by"] == "Mr Jones"
    assert one["waiting"] is True and one["targets"] == ["website", "newsletter", "display"]
    assert one["states"]["website"]["state"] == "blocked"
    assert one["states"]["website"]["reason_codes"]
    assert items[fair[0]]["targets"] == ["newsletter", "display"]
    codes = {c["code"] for c in one["states"]["website"]["reason_codes"]}

    # Filters and search.
    assert sorted(_queue(client, slt, event="Sports day")[0]) == sorted(sports)
    assert sorted(_queue(client, slt, uploader="Ms Patel")[0]) == sorted(fair)
    assert sorted(_queue(client, slt, channel="website")[0]) == sorted(sports)
    assert _queue(client, slt, q="FAIR_1")[0] == [fair[1]]
    assert _queue(client, slt, q="summer fair")[1] == 2
    assert _queue(client, slt, reason=sorted(codes)[0], event="Sports day")[1] == 3
    assert _queue(client, slt, reason="no_such_reason")[1] == 0
    today = date.today()
    assert _queue(client, slt, since=(today + timedelta(days=2)).isoformat())[1] == 0
    assert _queue(client, slt, until=(today + timedelta(days=2)).isoformat())[1] == 5
    # Sorts, and paging by limit and offset over the whole filtered list.
    oldest, _ = _queue(client, slt, sort="oldest")
    newest, _ = _queue(client, slt, sort="newest")
    assert newest == list(reversed(oldest)) and oldest[0] == sports[0]
    page, total = _queue(client, slt, sort="oldest", limit=2, offset=1)
    assert page == oldest[1:3] and total == 5
    assert _queue(client, slt, offset=5)[0] == []

    # SLT approve one sports photo for every channel it is for: it leaves the queue.
    r = client.post(f"/api/v1/media/{sports[0]}/decisions", headers=slt, json={
        "kind": "approve", "channels": ["website", "newsletter", "display"],
        "justification": "Sports day, pupils' backs only; fine for the website."})
    assert r.status_code == 201, r.text
    waiting, count = _queue(client, slt)
    assert sports[0] not in waiting and count == 4
    decided = client.get("/api/v1/review", headers=slt, params={"view": "decided"}).json()
    assert [i["media"]["id"] for i in decided] == [sports[0]]
    assert decided[0]["waiting"] is False
    assert decided[0]["states"]["website"]["state"] in ("allowed", "decided")
    assert _queue(client, slt, view="all")[1] == 5
    assert _queue(client, slt, status="blocked")[1] == 4

    # Bad input is a clear 422; staff may not see the queue.
    for bad in ({"limit": 0}, {"limit": 201}, {"offset": -1}, {"view": "everything"},
                {"sort": "random"}, {"status": "lost"}, {"channel": "tv"},
                {"since": "yesterday"}, {"q": "x" * 201}):
        r = client.get("/api/v1/review", headers=slt, params=bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"].startswith("application/json")
    assert client.get("/api/v1/review", headers=jones).status_code == 403

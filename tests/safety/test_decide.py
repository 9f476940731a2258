"""The decision function on its own: every reason it can give and every medium status,
from facts built in the test (no database: `decide_channel` is pure)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from models.orm import (
    ConsentStatus,
    Device,
    Face,
    MatchStatus,
    Media,
    MediaKind,
    MediaStatus,
    PublicationConsent,
)
from services.core.policy import Policy
from services.gate import reasons as rc
from services.gate.decide import ConsentFacts, decide_channel, face_allowed, is_stale

TODAY = date(2026, 6, 30)
ORG = uuid.uuid4()
A = uuid.uuid4()
OPEN = Policy(slt_approval_required=False, personal_devices="with_permission")


def medium(*faces: Face, status: MediaStatus = MediaStatus.SCREENED,
           kind: MediaKind = MediaKind.IMAGE, device: Device = Device.SCHOOL,
           epoch: int | None = 0, **extra: object) -> Media:
    m = Media(id=uuid.uuid4(), org_id=ORG, status=status.value, kind=kind.value,
              device=device.value, screened_match_epoch=epoch, needs_rescreen=False,
              frames_screened=10 if kind == MediaKind.VIDEO else None, error=None,
              screen_flags=None, **extra)
    m.faces = list(faces)
    return m


def face(status: MatchStatus = MatchStatus.MATCHED, pupil: uuid.UUID | None = A,
         candidates: list[dict[str, object]] | None = None) -> Face:
    return Face(id=uuid.uuid4(), frame=0, top=0, right=10, bottom=10, left=0,
                pupil_id=pupil if status == MatchStatus.MATCHED else None,
                match_status=status.value, candidates=candidates)


def consent(status: ConsentStatus = ConsentStatus.GRANTED,
            expires_on: date | None = None) -> PublicationConsent:
    return PublicationConsent(pupil_id=A, channel="website", status=status.value,
                              given_by="guardian", expires_on=expires_on)


def facts(*, record: PublicationConsent | None = None, biometric: bool = True,
          active: bool = True, epoch: int = 0, **extra: object) -> ConsentFacts:
    latest = {(A, "website"): record} if record is not None else {}
    # The gate decides from each giver's newest record.
    by_giver = {(A, "website", record.given_by): record} if record is not None else {}
    return ConsentFacts(latest=latest, by_giver=by_giver, biometric_current={A: biometric},
                        active={A: active}, match_epoch={ORG: epoch}, **extra)


def codes(m: Media, f: ConsentFacts, policy: Policy = OPEN, channel: str = "website",
          blurred: set[uuid.UUID] | None = None) -> list[str]:
    return decide_channel(m, policy, f, channel, TODAY, blurred=blurred).codes


def test_a_matched_pupil_with_consent_is_allowed() -> None:
    assert codes(medium(face()), facts(record=consent())) == []


def test_no_faces_and_no_approval_rule_is_allowed() -> None:
    assert codes(medium(), facts()) == []


@pytest.mark.parametrize(("status", "code"), [
    (MediaStatus.QUEUED, rc.SCREENING_PENDING),
    (MediaStatus.SCREENING, rc.SCREENING_PENDING),
    (MediaStatus.FAILED, rc.SCREENING_FAILED),
    (MediaStatus.PURGED, rc.PURGED),
    (MediaStatus.REJECTED, rc.REJECTED),
])
def test_every_unfinished_or_ended_status_blocks(status: MediaStatus, code: str) -> None:
    assert code in codes(medium(face(), status=status), facts(record=consent()))


def test_needs_review_is_decided_on_its_faces() -> None:
    m = medium(face(), status=MediaStatus.NEEDS_REVIEW)
    assert codes(m, facts(record=consent())) == []


def test_an_unknown_status_blocks() -> None:
    m = medium(face())
    m.status = "archived"
    assert codes(m, facts(record=consent())) == [rc.UNEXPECTED_STATUS]


@pytest.mark.parametrize(("record", "code"), [
    (None, rc.NO_CONSENT),
    (consent(ConsentStatus.WITHDRAWN), rc.CONSENT_WITHDRAWN),
    (consent(expires_on=TODAY - timedelta(days=1)), rc.CONSENT_EXPIRED),
])
def test_every_missing_or_ended_consent_blocks(record: PublicationConsent | None,
                                               code: str) -> None:
    assert codes(medium(face()), facts(record=record)) == [code]


def test_consent_expiring_today_still_holds_today() -> None:
    assert codes(medium(face()), facts(record=consent(expires_on=TODAY))) == []


def test_a_leaver_blocks_before_anything_else_about_them() -> None:
    assert codes(medium(face()), facts(record=consent(), active=False)) == [rc.PUPIL_LEFT]


def test_ended_biometric_consent_blocks() -> None:
    assert codes(medium(face()), facts(record=consent(), biometric=False)) == [
        rc.BIOMETRIC_ENDED]


def test_unknown_and_uncertain_faces_block_with_counts_and_candidates() -> None:
    b = str(uuid.uuid4())
    m = medium(face(MatchStatus.UNKNOWN), face(MatchStatus.UNKNOWN),
               face(MatchStatus.UNCERTAIN, candidates=[{"pupil_id": b, "distance": 0.4}]))
    d = decide_channel(m, OPEN, facts(), "website", TODAY)
    by_code = {r.code: r.data for r in d.reasons}
    assert by_code[rc.FACES_UNKNOWN]["count"] == 2
    assert by_code[rc.FACES_UNCERTAIN] == {"count": 1, "video": False, "candidates": [b]}


def test_a_cleared_face_counts_only_without_candidates() -> None:
    plain = face(MatchStatus.UNKNOWN)
    close = face(MatchStatus.UNCERTAIN, candidates=[{"pupil_id": str(A), "distance": 0.4}])
    cleared = {plain.id: {"website"}, close.id: {"website"}}
    f = facts(cleared=cleared)
    assert codes(medium(plain), f) == []
    assert codes(medium(close), f) == [rc.FACES_UNCERTAIN]
    assert face_allowed(plain, f, "website", TODAY) and not face_allowed(close, f, "website",
                                                                         TODAY)


def test_a_recognised_pupil_cannot_be_cleared() -> None:
    matched = face()
    f = facts(record=None, cleared={matched.id: {"website"}})
    assert codes(medium(matched), f) == [rc.NO_CONSENT]


def test_a_medium_screened_before_the_gallery_grew_is_stale() -> None:
    m = medium(face(), epoch=3)
    assert codes(m, facts(record=consent(), epoch=4)) == [rc.STALE]
    assert is_stale(medium(face(), epoch=None), facts(epoch=0))
    flagged = medium(face())
    flagged.needs_rescreen = True
    assert codes(flagged, facts(record=consent())) == [rc.STALE]


def test_a_medium_without_faces_is_not_stale_but_an_old_video_is() -> None:
    assert not is_stale(medium(epoch=None), facts(epoch=9))
    video = medium(kind=MediaKind.VIDEO, epoch=9)
    video.frames_screened = None
    assert is_stale(video, facts(epoch=9))


def test_a_truncated_video_blocks_until_slt_approve() -> None:
    m = medium(kind=MediaKind.VIDEO)
    m.screen_flags = [{"code": rc.VIDEO_TRUNCATED, "frames": 141, "claimed": 275}]
    assert codes(m, facts()) == [rc.VIDEO_TRUNCATED]
    assert codes(m, facts(approved={m.id: {"website"}})) == []


def test_personal_devices_need_approval_in_words_of_the_policy() -> None:
    m = medium(device=Device.PERSONAL)
    assert codes(m, facts(), Policy(slt_approval_required=False)) == [
        rc.PERSONAL_DEVICE_FORBIDDEN]
    assert codes(m, facts()) == [rc.PERSONAL_DEVICE_PERMISSION]
    assert codes(m, facts(approved={m.id: {"website"}})) == []


def test_slt_approval_when_the_policy_requires_it() -> None:
    m = medium(face())
    strict = Policy(slt_approval_required=True)
    assert codes(m, facts(record=consent()), strict) == [rc.SLT_APPROVAL_REQUIRED]
    assert codes(m, facts(record=consent(), approved={m.id: {"website"}}), strict) == []


def test_a_channel_off_in_the_policy_blocks() -> None:
    assert rc.CHANNEL_DISABLED in codes(medium(), facts(), channel="press")


def test_a_blurred_face_does_not_count_and_blurred_approval_counts_for_the_copy() -> None:
    hidden = face(MatchStatus.UNKNOWN)
    m = medium(face(), hidden)
    strict = Policy(slt_approval_required=True)
    f = facts(record=consent(), approved_redacted={m.id: {"website"}})
    assert codes(m, f, strict, blurred={hidden.id}) == []
    assert codes(m, f, strict) == [rc.FACES_UNKNOWN, rc.SLT_APPROVAL_REQUIRED]


def test_a_blurred_copy_of_a_video_is_decided_on_the_faces_left_visible() -> None:
    stranger = face(MatchStatus.UNKNOWN)
    m = medium(face(), stranger, kind=MediaKind.VIDEO)
    f = facts(record=consent())
    assert codes(m, f) == [rc.FACES_UNKNOWN]
    assert codes(m, f, blurred={stranger.id}) == []


def test_a_video_counts_people_not_frames() -> None:
    frames = [face(MatchStatus.UNKNOWN) for _ in range(30)]
    for f in frames:
        f.track = 7
    other = face(MatchStatus.UNKNOWN)
    other.track = 8
    d = decide_channel(medium(*frames, other, kind=MediaKind.VIDEO), OPEN, facts(), "website",
                       TODAY)
    assert [(r.code, r.data["count"]) for r in d.reasons] == [(rc.FACES_UNKNOWN, 2)]

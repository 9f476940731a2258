"""Names SLT gave to faces survive a re-screen (issue 11).

A re-screen replaces a medium's face rows, so an identification (services.review.identify)
would point at a face that is gone and the face would be unknown again. The save calls
`remember` before it replaces the rows and `reapply` after, in the same transaction and
under the same gate lock, so the decision that follows already sees the name.

The new face (a video: the new track) that overlaps the named one gets the name again:
IoU >= MIN_IOU with the named box (a video: on the same frame, for a majority of the
named track's frames). It fails closed: if no new face overlaps, or more than one does,
or the engine now recognises the face as a different pupil, or the file is not the one
named, the name is not applied (the engine's result stands: unknown or uncertain blocks)
and the identification is marked lost, which the gate gives as NAMED_FACE_LOST until SLT
name a face of the medium again. A correction waiting for a second SLT member is not in
force and is not applied."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from models.clock import utcnow
from models.orm import Face, FaceIdentification, MatchStatus, Media
from models.repositories.identifications import IdentificationRepository
from services.core.audit import SystemActor
from services.core.audit import record as audit
from services.gate import reasons as rc

# Intersection over union of two boxes at or above which they are the same face.
MIN_IOU = 0.5

# Why a name was not carried over (FaceIdentification.lost_reason).
MATCHED_OTHER = "matched_other_pupil"
NO_OVERLAP = "no_overlap"
AMBIGUOUS = "ambiguous_overlap"
FILE_CHANGED = "file_changed"
NO_BOXES = "no_boxes"

Box = dict[str, int]


def boxes_of(named: Face, faces: Sequence[Face]) -> list[Box]:
    """The boxes that find the face again: the named face first, then the rest of its
    track in frame order. Pixels, (top, right, bottom, left) as Face stores them."""
    rest = sorted((f for f in faces if f.id != named.id), key=lambda f: (f.frame, f.left))
    return [{"frame": f.frame, "top": f.top, "right": f.right, "bottom": f.bottom,
             "left": f.left} for f in [named, *rest]]


def name_faces(faces: Sequence[Face], pupil_id: uuid.UUID) -> None:
    """Match the faces to the pupil, as SLT named them."""
    for f in faces:
        f.pupil_id = pupil_id
        f.match_status = MatchStatus.MATCHED.value
        # The engine's distance was to someone else's templates (or nobody's): a person
        # named this pupil, no likeness to report.
        f.distance = None


def iou(a: Box, b: Face) -> float:
    top, bottom = max(a["top"], b.top), min(a["bottom"], b.bottom)
    left, right = max(a["left"], b.left), min(a["right"], b.right)
    inter = max(0, bottom - top) * max(0, right - left)
    area_a = max(0, a["bottom"] - a["top"]) * max(0, a["right"] - a["left"])
    area_b = max(0, b.bottom - b.top) * max(0, b.right - b.left)
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Remembered:
    record: FaceIdentification
    boxes: list[Box] | None
    # A correction waiting for a second SLT member: not applied, only kept pointing at
    # the same face so the second member can still confirm it (confirm re-checks it).
    pending: bool = False


def remember(session: Session, media: Media) -> list[Remembered]:
    """Before the face rows are replaced: the namings to carry over, with their boxes
    (read from the old rows for a naming made before boxes were kept)."""
    repo = IdentificationRepository(session)
    records = repo.to_reapply(media.id)
    pending = repo.awaiting([media.id])
    if not records and not pending:
        return []
    # The newest naming of a face is the one that stands (a naming after a naming); the
    # older ones are superseded, not carried over, so they cannot be "lost".
    newest = {r.face_id: r for r in records}
    for r in records:
        if newest[r.face_id] is not r:
            r.superseded_by = newest[r.face_id].id
    records = [r for r in records if newest[r.face_id] is r]
    old = {f.id: f for f in media.faces}
    found: list[Remembered] = []
    for r in records:
        boxes = r.boxes
        face = old.get(r.face_id)
        if not boxes and face is not None:
            track = [f for f in old.values() if face.track is not None and f.track == face.track]
            boxes = boxes_of(face, track or [face])
        found.append(Remembered(r, boxes))
    for r in pending:
        face = old.get(r.face_id)
        if face is not None:
            track = [f for f in old.values() if face.track is not None and f.track == face.track]
            found.append(Remembered(r, boxes_of(face, track or [face]), pending=True))
    return found


def units(faces: Sequence[Face]) -> list[list[Face]]:
    """One person each: a video's track, or a face on its own."""
    tracks: dict[int, list[Face]] = {}
    alone: list[list[Face]] = []
    for f in faces:
        if f.track is None:
            alone.append([f])
        else:
            tracks.setdefault(f.track, []).append(f)
    return [*alone, *tracks.values()]


def overlapping(boxes: list[Box], people: list[list[Face]]) -> list[list[Face]]:
    """The people (see `units`) where the named face was; one, or it is not safe."""
    return [u for u in people if _overlaps(boxes, u)]


def _overlaps(boxes: list[Box], unit: list[Face]) -> bool:
    hits = sum(1 for b in boxes
               if any(f.frame == b["frame"] and iou(b, f) >= MIN_IOU for f in unit))
    # A majority of the named frames (a photo: its one box).
    return hits * 2 > len(boxes)


def _lose(session: Session, actor: SystemActor, media: Media, record: FaceIdentification,
          why: str) -> None:
    record.lost_at = utcnow()
    record.lost_reason = why
    audit(session, actor, "review.face_name_lost", f"media:{media.id}",
          {"identification": str(record.id), "pupil": str(record.pupil_id), "reason": why})


def reapply(session: Session, media: Media, remembered: list[Remembered]) -> None:
    """After the new face rows are saved (flushed): carry each naming over, or mark it
    lost; then the medium's NAMED_FACE_LOST flags say which names SLT must give again."""
    if not remembered:
        refresh_lost_flags(session, media)
        return
    actor = SystemActor("screening", media.org_id)
    faces = list(media.faces)
    # The engine's own result, before any name of this pass is applied.
    engine = {f.id: (f.match_status, f.pupil_id) for f in faces}
    people = units(faces)
    for item in remembered:
        record = item.record
        if item.pending:
            _follow(record, item.boxes or [], people)
            continue
        if record.media_sha256 is not None and record.media_sha256 != media.sha256:
            _lose(session, actor, media, record, FILE_CHANGED)
            continue
        if not item.boxes:
            _lose(session, actor, media, record, NO_BOXES)
            continue
        boxes = item.boxes
        hits = overlapping(boxes, people)
        if len(hits) != 1:
            _lose(session, actor, media, record, NO_OVERLAP if not hits else AMBIGUOUS)
            continue
        unit = hits[0]
        # The pupils SLT named and, for a correction, the one they corrected away from:
        # the engine seeing either is the situation SLT decided on.
        expected = {record.pupil_id, record.previous_pupil_id}
        seen = {pid for status, pid in (engine[f.id] for f in unit)
                if status == MatchStatus.MATCHED and pid is not None}
        if seen - expected:
            _lose(session, actor, media, record, MATCHED_OTHER)
            continue
        to_name = [f for f in unit
                   if not (engine[f.id][0] == MatchStatus.MATCHED
                           and engine[f.id][1] == record.pupil_id)]
        name_faces(to_name, record.pupil_id)
        first = boxes[0]
        anchor = next((f for f in unit if f.frame == first["frame"]
                       and iou(first, f) >= MIN_IOU), min(unit, key=lambda f: f.frame))
        old_face = record.face_id
        record.face_id = anchor.id
        if record.boxes is None:
            record.boxes = boxes
            record.media_sha256 = media.sha256
        audit(session, actor, "review.face_name_reapplied", f"media:{media.id}",
              {"identification": str(record.id), "pupil": str(record.pupil_id),
               "face": str(anchor.id), "previous_face": str(old_face), "faces": len(unit),
               "engine_agreed": not to_name})
    session.flush()
    refresh_lost_flags(session, media)


def _follow(record: FaceIdentification, boxes: list[Box], people: list[list[Face]]) -> None:
    """Point a waiting correction at the new face where its face was, changing nothing
    else; where that is not one face, it is left pointing at the old one (a second SLT
    member's confirm then finds no face and SLT must ask again)."""
    hits = overlapping(boxes, people)
    if len(hits) == 1 and boxes:
        first = boxes[0]
        record.face_id = next((f for f in hits[0] if f.frame == first["frame"]
                               and iou(first, f) >= MIN_IOU),
                              min(hits[0], key=lambda f: f.frame)).id


def refresh_lost_flags(session: Session, media: Media) -> None:
    """media.screen_flags carry one NAMED_FACE_LOST per lost naming, and no other."""
    lost = IdentificationRepository(session).lost(media.id)
    flags = [f for f in media.screen_flags or [] if f.get("code") != rc.NAMED_FACE_LOST]
    flags += [{"code": rc.NAMED_FACE_LOST, "identification": str(r.id),
               "named_pupil_id": str(r.pupil_id), "why": r.lost_reason} for r in lost]
    media.screen_flags = flags or None
    session.flush()

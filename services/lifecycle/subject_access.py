"""Subject access: every medium a pupil was matched in, with every publication of it.

Matches are kept after biometric erasure (they are what finds published copies
to take down), so the answer covers media screened before the erasure too.
Purged media have no face rows left and so no longer appear.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from models.orm import Media, Publication, Pupil, Role
from models.repositories.lifecycle import TakedownRepository
from models.repositories.media import MediaRepository
from services.core.audit import record as audit
from services.core.auth import Principal
from services.register.service import get_pupil


@dataclass(frozen=True)
class PupilMedium:
    media: Media
    # How many of the medium's faces were matched to the pupil (video: across frames).
    matched_faces: int
    publications: list[Publication]


def media_of_pupil(
    session: Session, principal: Principal, pupil_id: uuid.UUID
) -> tuple[Pupil, list[PupilMedium]]:
    principal.require(Role.SLT, Role.ADMIN)
    pupil = get_pupil(session, principal, pupil_id)
    media = MediaRepository(session).media_matching_pupil(principal.org_id, pupil.id)
    publications = TakedownRepository(session).publications_of([m.id for m in media])
    by_media: dict[uuid.UUID, list[Publication]] = {}
    for p in publications:
        by_media.setdefault(p.media_id, []).append(p)
    audit(session, principal, "subject_access.listed", f"pupil:{pupil.id}",
          {"media": len(media)})
    return pupil, [
        PupilMedium(
            media=m,
            matched_faces=sum(1 for f in m.faces if f.pupil_id == pupil.id),
            publications=by_media.get(m.id, []),
        )
        for m in media
    ]

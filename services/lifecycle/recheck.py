"""The periodic consent re-check: every live publication is decided again, and whatever
the gate no longer allows (above all, consent that has passed its `expires_on`) is taken
down. A withdrawal acts at once through `redecide_for_pupil`; expiry happens with no
request at all, so this job is what makes it act."""

from __future__ import annotations

import logging
from datetime import date

from sqlalchemy.orm import Session, sessionmaker

from models.clock import utcnow
from models.db import transaction
from models.orm import Organisation
from models.repositories.lifecycle import TakedownRepository
from models.repositories.media import PublicationRepository
from models.repositories.organisations import OrganisationRepository
from services.audit import SystemActor
from services.decide.service import decide_publication, load_facts
from services.publish.service import take_down
from storage.base import ObjectStore

log = logging.getLogger(__name__)


def recheck_organisation(
    session: Session, store: ObjectStore, org: Organisation, *, today: date | None = None
) -> int:
    """Take down every live publication of this organisation the gate no longer allows.
    Returns how many went."""
    repo = TakedownRepository(session)
    media = repo.media_with_faces(repo.live_media_ids(org.id))
    live = PublicationRepository(session).active_for_media([m.id for m in media])
    if not live:
        return 0
    facts = load_facts(session, media)
    by_id = {m.id: m for m in media}
    system = SystemActor("consent-recheck", org.id)
    today = today or utcnow().date()
    taken = 0
    for publication in live:
        # A redacted copy is judged on the faces it leaves visible.
        verdict = decide_publication(session, by_id[publication.media_id], publication,
                                     facts=facts, today=today)
        if not verdict.allowed:
            take_down(session, store, system, publication,
                      reason="periodic consent check: " + "; ".join(verdict.reasons))
            taken += 1
    return taken


def recheck_all(sessions: sessionmaker[Session], store: ObjectStore,
                *, today: date | None = None) -> int:
    """One transaction per organisation, so one school's failure does not hold up another's
    takedowns."""
    with transaction(sessions) as session:
        org_ids = [o.id for o in TakedownRepository(session).orgs_with_live_publications()]
    taken = 0
    for org_id in org_ids:
        try:
            with transaction(sessions) as session:
                org = OrganisationRepository(session).get(org_id)
                if org is not None:
                    taken += recheck_organisation(session, store, org, today=today)
        except Exception:
            log.exception("consent re-check failed for organisation %s", org_id)
    if taken:
        log.warning("periodic consent check took down %d publication(s)", taken)
    return taken

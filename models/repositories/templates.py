"""Queries of template re-enrolment: the job row and the reference photos it walks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from models.orm import FaceTemplate, Pupil, ReferencePhoto, TemplateJob, TemplateJobStatus


class TemplateJobRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, job: TemplateJob) -> TemplateJob:
        self.session.add(job)
        self.session.flush()
        return job

    def get(self, org_id: uuid.UUID, job_id: uuid.UUID) -> TemplateJob | None:
        return self.session.scalar(
            select(TemplateJob).where(TemplateJob.id == job_id, TemplateJob.org_id == org_id)
        )

    def get_any(self, job_id: uuid.UUID) -> TemplateJob | None:
        """For the worker, which has only the id."""
        return self.session.get(TemplateJob, job_id, populate_existing=True)

    def running(self, org_id: uuid.UUID) -> TemplateJob | None:
        return self.session.scalar(
            select(TemplateJob)
            .where(TemplateJob.org_id == org_id,
                   TemplateJob.status == TemplateJobStatus.RUNNING.value)
            .order_by(TemplateJob.started_at.desc())
            .limit(1)
        )

    def latest(self, org_id: uuid.UUID) -> TemplateJob | None:
        return self.session.scalar(
            select(TemplateJob)
            .where(TemplateJob.org_id == org_id)
            .order_by(TemplateJob.started_at.desc())
            .limit(1)
        )

    # --- the reference photos a job walks -------------------------------------
    def count_references(self, org_id: uuid.UUID, before: datetime) -> int:
        return int(
            self.session.scalar(
                select(func.count())
                .select_from(ReferencePhoto)
                .join(Pupil, Pupil.id == ReferencePhoto.pupil_id)
                .where(Pupil.org_id == org_id, ReferencePhoto.created_at < before)
            )
            or 0
        )

    def references_after(
        self, org_id: uuid.UUID, before: datetime, after_id: uuid.UUID | None, limit: int
    ) -> Sequence[tuple[uuid.UUID, uuid.UUID, str]]:
        """(photo id, pupil id, storage key) of the organisation's reference photos made
        before ``before``, with ids above ``after_id``, in id order."""
        query = (
            select(ReferencePhoto.id, ReferencePhoto.pupil_id, ReferencePhoto.storage_key)
            .join(Pupil, Pupil.id == ReferencePhoto.pupil_id)
            .where(Pupil.org_id == org_id, ReferencePhoto.created_at < before)
            .order_by(ReferencePhoto.id)
            .limit(limit)
        )
        if after_id is not None:
            query = query.where(ReferencePhoto.id > after_id)
        return [(r[0], r[1], r[2]) for r in self.session.execute(query)]

    def count_pupil_references_after(self, pupil_id: uuid.UUID, before: datetime,
                                     after_id: uuid.UUID | None) -> int:
        query = select(func.count()).select_from(ReferencePhoto).where(
            ReferencePhoto.pupil_id == pupil_id, ReferencePhoto.created_at < before)
        if after_id is not None:
            query = query.where(ReferencePhoto.id > after_id)
        return int(self.session.scalar(query) or 0)

    def reference(self, photo_id: uuid.UUID) -> ReferencePhoto | None:
        return self.session.get(ReferencePhoto, photo_id, populate_existing=True)

    def replace_template(self, photo: ReferencePhoto, template: FaceTemplate) -> None:
        """The photo's template(s) give way to ``template`` (same photo, same pupil)."""
        self.session.execute(
            delete(FaceTemplate).where(FaceTemplate.reference_photo_id == photo.id)
        )
        template.reference_photo_id = photo.id
        template.pupil_id = photo.pupil_id
        self.session.add(template)
        self.session.flush()

"""Choose the object store backend from `Settings`."""

from __future__ import annotations

from services.core.config import Settings
from storage.base import ObjectStore
from storage.filesystem import FilesystemStore
from storage.minio_store import MinioStore


def build_store(settings: Settings) -> ObjectStore:
    if settings.storage_backend == "filesystem":
        return FilesystemStore(settings.objects_dir)
    # Production buckets are provisioned (with versioning and lifecycle rules)
    # by the deployment, and the service account need not be allowed to create
    # buckets; only an embedded install creates its own.
    return MinioStore.from_settings(
        settings, create_bucket=settings.environment == "embedded"
    )

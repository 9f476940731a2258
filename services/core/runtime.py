"""Process-wide handles built once from Settings: database sessions and the object store."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy.orm import Session, sessionmaker

from models.db import session_factory
from services.core.config import get_settings
from services.core.stores import build_store
from storage.base import ObjectStore


def sessions() -> sessionmaker[Session]:
    return session_factory(get_settings().resolved_database_url)


@lru_cache
def store() -> ObjectStore:
    return build_store(get_settings())


def reset() -> None:
    """Forget cached settings and handles (the CLI calls this after --data-dir)."""
    get_settings.cache_clear()
    store.cache_clear()
    session_factory.cache_clear()

"""Object storage for originals, derived images and reference photos."""

from storage.base import ObjectStore
from storage.factory import build_store

__all__ = ["ObjectStore", "build_store"]

"""Object storage for originals, derived images and reference photos."""

from storage.base import ObjectStore

__all__ = ["ObjectStore"]

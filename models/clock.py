from datetime import UTC, datetime


def utcnow() -> datetime:
    """Timezone-aware UTC now; every stored time is UTC."""
    return datetime.now(UTC)

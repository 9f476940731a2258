"""Face templates at rest: dlib's 128-d float64 encoding, little-endian, Fernet-encrypted."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from services.core.config import Settings

ENCODING_DTYPE = np.dtype("<f8")


def encrypt_template(settings: Settings, encoding: npt.NDArray[np.float64]) -> bytes:
    return settings.template_fernet().encrypt(
        np.asarray(encoding, dtype=ENCODING_DTYPE).tobytes()
    )


def decrypt_template(settings: Settings, ciphertext: bytes) -> npt.NDArray[np.float64]:
    raw = settings.template_fernet().decrypt(ciphertext)
    return np.frombuffer(raw, dtype=ENCODING_DTYPE).copy()

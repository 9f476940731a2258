"""Clean public copies of videos: every frame decoded (display rotation applied) and
written again into a new WebM (VP8) file.

The copy carries no sound and none of the source container's metadata: no
location, no camera or phone model, no creation time. It is built from pixels
alone, never from the uploaded file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2

from services.errors import ConsentGateError
from storage.base import ObjectStore
from workers.engine.imaging import probe_video, sample_video_frames

VIDEO_SUFFIX = "webm"
VIDEO_TYPE = "video/webm"


class CleanCopyFailed(ConsentGateError):
    code = "clean_copy_failed"


def clean_video_copy(store: ObjectStore, key: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="cg-publish-") as tmp:
        source = Path(tmp) / "original"
        store.download(key, source)
        fps = probe_video(source).fps
        target = Path(tmp) / f"clean.{VIDEO_SUFFIX}"
        writer: cv2.VideoWriter | None = None
        try:
            # Sampling at the video's own rate yields every frame.
            for _, rgb in sample_video_frames(source, fps=fps):
                if writer is None:
                    height, width = rgb.shape[:2]
                    writer = cv2.VideoWriter(
                        str(target), cv2.VideoWriter.fourcc(*"VP80"), fps, (width, height)
                    )
                    if not writer.isOpened():
                        raise CleanCopyFailed("this server cannot write WebM video")
                writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        finally:
            if writer is not None:
                writer.release()
        if writer is None or not target.is_file() or target.stat().st_size == 0:
            raise CleanCopyFailed("no frames could be written to the public copy")
        return target.read_bytes()

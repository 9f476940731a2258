"""Clean public copies of videos: every frame decoded (display rotation applied) and
written again into a new WebM (VP8) file.

The copy carries no sound and none of the source container's metadata: no
location, no camera or phone model, no creation time. It is built from pixels
alone, never from the uploaded file.

It is built from the same frame sequence screening looked at
(`imaging.iter_video_frames`, counted from what the decoder yields), and refused if
the decoder now yields a different number of frames: a published copy contains only
frames that were screened.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2

from services.core.errors import Conflict
from storage.base import ObjectStore
from workers.engine.imaging import iter_video_frames, probe_video

VIDEO_SUFFIX = "webm"
VIDEO_TYPE = "video/webm"


class CleanCopyFailed(Conflict):
    code = "clean_copy_failed"


def clean_video_copy(store: ObjectStore, key: str, *, expected_frames: int | None) -> bytes:
    if expected_frames is None:
        raise CleanCopyFailed("this video has not been screened frame by frame yet; it is "
                              "queued to be checked again")
    with tempfile.TemporaryDirectory(prefix="cg-publish-") as tmp:
        source = Path(tmp) / "original"
        store.download(key, source)
        fps = probe_video(source).fps
        target = Path(tmp) / f"clean.{VIDEO_SUFFIX}"
        writer: cv2.VideoWriter | None = None
        frames = 0
        try:
            for _, rgb in iter_video_frames(source):
                if frames >= expected_frames:
                    raise CleanCopyFailed("the video yields more frames than were screened")
                if writer is None:
                    height, width = rgb.shape[:2]
                    writer = cv2.VideoWriter(
                        str(target), cv2.VideoWriter.fourcc(*"VP80"), fps, (width, height)
                    )
                    if not writer.isOpened():
                        raise CleanCopyFailed("this server cannot write WebM video")
                writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                frames += 1
        finally:
            if writer is not None:
                writer.release()
        if frames != expected_frames:
            raise CleanCopyFailed(f"the video yields {frames} frames but {expected_frames} "
                                  "were screened")
        if writer is None or not target.is_file() or target.stat().st_size == 0:
            raise CleanCopyFailed("no frames could be written to the public copy")
        return target.read_bytes()

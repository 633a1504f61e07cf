"""The check render: each camera's frame with the 3D skeletons projected back onto it, side by side.

Where the 3D is right, the drawn skeleton sits on the person in every view; a camera where it
does not is where the 2D or the calibration disagrees. Every camera's frame is scaled to one
height (:data:`PANEL_HEIGHT`) and the panels are joined left to right, a camera's name on each.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..skeleton import Skeleton
from ..types import Person
from .calibration import Camera
from .reconstruct import Frame3D

PANEL_HEIGHT = 540  # pixels of each camera's panel


def projected_people(frame: Frame3D, camera: Camera, skeleton: Skeleton) -> list[Person]:
    """``frame``'s 3D people as 2D people of ``camera`` (score 1 where the keypoint is in front
    of the camera, its id kept for the colours)."""
    people = []
    for person in frame.people:
        xy = camera.project(person.xyz)
        seen = np.isfinite(xy).all(axis=1) & (camera.depth(person.xyz) > 0)
        xy[~seen] = np.nan
        people.append(Person(xy, seen.astype(float), 1.0, skeleton, person.id))
    return people


def render_check(path: str | Path, videos: Sequence[Path], offsets: Sequence[int], cameras: Sequence[Camera],
                 frames: Sequence[Frame3D], skeleton: Skeleton, fps: float) -> None:
    """Write the check video to ``path`` (atomically, as :class:`~posecli.io.video_sink.VideoSink` does)."""
    import cv2

    from ..formats.render import Renderer
    from ..io.video import VideoSource
    from ..io.video_sink import VideoSink

    count = len(frames)
    sources = [iter(VideoSource(v, first_frame=o, stop_frame=o + count))
               for v, o in zip(videos, offsets, strict=True)]
    renderer = Renderer()
    sink = None
    try:
        for frame in frames:
            panels = []
            for source, camera in zip(sources, cameras, strict=True):
                item = next(source, None)
                image = None if item is None else item[2]  # (index, time, BGR image)
                if image is None:
                    image = np.zeros((camera.size_wh[1], camera.size_wh[0], 3), np.uint8)
                drawn = renderer(image, projected_people(frame, camera, skeleton))
                scale = PANEL_HEIGHT / drawn.shape[0]
                size = (round(drawn.shape[1] * scale), PANEL_HEIGHT)
                panel = cv2.resize(drawn, size, interpolation=cv2.INTER_AREA)
                cv2.putText(panel, camera.name, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2)
                panels.append(panel)
            joined = np.hstack(panels)
            if sink is None:
                sink = VideoSink(path, fps, (joined.shape[1], joined.shape[0]))
            sink.write(joined)
    except BaseException:
        if sink is not None:
            sink.close(commit=False)
        raise
    if sink is not None:
        sink.close()

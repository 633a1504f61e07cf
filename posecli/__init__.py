"""posecli: multi-person 2D human pose estimation, the OpenPose way.

The public API (everything in ``__all__``)::

    import cv2, posecli
    est = posecli.PoseEstimator()                       # default model, auto device
    image = posecli.read_image("photo.jpg")             # BGR uint8, EXIF orientation applied
    frame = est(image)                                  # posecli.Frame
    for person in frame.people:                         # posecli.Person
        print(person.score, person.keypoint("nose"))    # (x, y, score) or None
    cv2.imwrite("pose.jpg", posecli.draw(image, frame.people))

Names are loaded on first use, so ``import posecli`` stays cheap. Everything else lives in
the stage packages (``posecli.network``, ``posecli.io``, ``posecli.formats``, ``posecli.video``,
``posecli.batch``): see docs/architecture.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .version import __version__

# public name -> module that defines it (the TYPE_CHECKING block below must match: a test checks it)
_EXPORTS = {
    # estimating
    "PoseEstimator": "inference.estimator",
    "Maps": "maps",
    "read_image": "io.images",
    "VideoSource": "io.video",
    "iter_video_poses": "video.run",
    "FrameResult": "video.pipeline",
    # records and skeletons
    "Person": "types",
    "Frame": "types",
    "Skeleton": "skeleton",
    "COCO18": "skeleton",
    "BODY25": "skeleton",
    "get_profile": "skeleton",
    # parsing, tracking, smoothing
    "ParserConfig": "parser",
    "get_preset": "parser",
    "parse": "parser",
    "Tracker": "video.track",
    "TrackerConfig": "video.track",
    "OneEuroConfig": "video.smooth",
    # results: writing, reading back, drawing
    "ResultWriter": "formats.writers",
    "load_openpose_json": "formats.readers",
    "load_posecli_json": "formats.readers",
    "read_maps": "formats.maps",
    "Renderer": "formats.render",
    "draw": "formats.render",
    # evaluation
    "evaluate_estimator": "evaluate",
    "evaluate_detections": "evaluate",
    "CocoMetrics": "evaluate",
    # errors
    "PoseError": "errors",
    "InputError": "errors",
    "ModelError": "errors",
    "DeviceError": "errors",
    "OutputError": "errors",
    "ParserError": "errors",
    "MissingExtraError": "errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'posecli' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # for type checkers and go-to-definition; must match _EXPORTS
    from .errors import (
        DeviceError,
        InputError,
        MissingExtraError,
        ModelError,
        OutputError,
        ParserError,
        PoseError,
    )
    from .evaluate import CocoMetrics, evaluate_detections, evaluate_estimator
    from .formats.maps import read_maps
    from .formats.readers import load_openpose_json, load_posecli_json
    from .formats.render import Renderer, draw
    from .formats.writers import ResultWriter
    from .inference.estimator import PoseEstimator
    from .maps import Maps
    from .io.images import read_image
    from .io.video import VideoSource
    from .parser import ParserConfig, get_preset, parse
    from .skeleton import BODY25, COCO18, Skeleton, get_profile
    from .types import Frame, Person
    from .video.pipeline import FrameResult
    from .video.run import iter_video_poses
    from .video.smooth import OneEuroConfig
    from .video.track import Tracker, TrackerConfig

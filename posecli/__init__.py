"""posecli: multi-person 2D human pose estimation, the OpenPose way.

The public API (everything in ``__all__``)::

    import cv2, posecli
    est = posecli.PoseEstimator()                       # default model, auto device
    frame = est(cv2.imread("photo.jpg"))                # posecli.Frame
    for person in frame.people:                         # posecli.Person
        print(person.score, person.keypoint("nose"))    # (x, y, score) or None
    cv2.imwrite("pose.jpg", posecli.draw(image, frame.people))

Names are loaded on first use, so ``import posecli`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "PoseEstimator": "inference.estimator",
    "Maps": "inference.estimator",
    "PoseModel": "network.session",
    "cuda_usable": "network.session",
    "ModelInfo": "network.metadata",
    "Person": "types",
    "Frame": "types",
    "Skeleton": "skeleton",
    "COCO18": "skeleton",
    "BODY25": "skeleton",
    "COCO17_NAMES": "skeleton",
    "get_profile": "skeleton",
    "ParserConfig": "parser",
    "PRESETS": "parser",
    "get_preset": "parser",
    "parse": "parser",
    "read_image": "io.images",
    "iter_video_poses": "video.run",
    "FrameResult": "video.pipeline",
    "VideoSource": "io.video",
    "Tracker": "video.track",
    "TrackerConfig": "video.track",
    "OneEuroConfig": "video.smooth",
    "evaluate_estimator": "evaluate",
    "evaluate_detections": "evaluate",
    "CocoMetrics": "evaluate",
    "Renderer": "formats.render",
    "draw": "formats.render",
    "ResultWriter": "formats.writers",
    "frame_record": "formats.records",
    "openpose_record": "formats.records",
    "coco_records": "formats.records",
    "write_json_atomic": "formats.writers",
    "load_openpose_json": "formats.readers",
    "load_posecli_json": "formats.readers",
    "list_models": "network.store",
    "store_dir": "network.store",
    "model_path": "network.store",
    "DEFAULT_MODEL": "network.store",
    "import_openvino_ir": "network.importers.openvino",
    "plan_batch": "batch.local",
    "run_job": "batch.local",
    "BatchPlan": "batch.local",
    "Job": "batch.local",
    "JobResult": "batch.local",
    "VideoOptions": "video.run",
    "VideoRun": "video.run",
    "run_batch_ray": "batch.ray.driver",
    "import_ray": "batch.ray.driver",
    "load_annotations": "evaluate",
    "METRIC_LABELS": "evaluate",
    "AtomicFile": "io.atomic",
    "check_writable": "io.atomic",
    "openpose_filename": "formats.records",
    "discard_pending": "io.atomic",
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


if TYPE_CHECKING:  # for type checkers and IDEs
    from .batch.local import BatchPlan, Job, JobResult, plan_batch, run_job
    from .batch.ray.driver import import_ray, run_batch_ray
    from .errors import (
        DeviceError,
        InputError,
        MissingExtraError,
        ModelError,
        OutputError,
        ParserError,
        PoseError,
    )
    from .evaluate import (
        METRIC_LABELS,
        CocoMetrics,
        evaluate_detections,
        evaluate_estimator,
        load_annotations,
    )
    from .formats.readers import load_openpose_json, load_posecli_json
    from .formats.records import coco_records, frame_record, openpose_filename, openpose_record
    from .formats.render import Renderer, draw
    from .formats.writers import ResultWriter, write_json_atomic
    from .inference.estimator import Maps, PoseEstimator
    from .io.atomic import AtomicFile, check_writable, discard_pending
    from .io.images import read_image
    from .io.video import VideoSource
    from .network.importers.openvino import import_openvino_ir
    from .network.metadata import ModelInfo
    from .network.session import PoseModel, cuda_usable
    from .network.store import DEFAULT_MODEL, list_models, model_path, store_dir
    from .parser import PRESETS, ParserConfig, get_preset, parse
    from .skeleton import BODY25, COCO17_NAMES, COCO18, Skeleton, get_profile
    from .types import Frame, Person
    from .video.pipeline import FrameResult
    from .video.run import VideoOptions, VideoRun, iter_video_poses
    from .video.smooth import OneEuroConfig
    from .video.track import Tracker, TrackerConfig

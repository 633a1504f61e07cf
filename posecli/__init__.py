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
    "PoseEstimator": "estimator",
    "Maps": "estimator",
    "PoseModel": "model",
    "cuda_usable": "model",
    "ModelInfo": "metadata",
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
    "read_image": "sources",
    "iter_video_poses": "pipeline",
    "FrameResult": "pipeline",
    "VideoSource": "sources",
    "Tracker": "track",
    "TrackerConfig": "track",
    "OneEuroConfig": "smooth",
    "evaluate_estimator": "evaluate",
    "evaluate_detections": "evaluate",
    "CocoMetrics": "evaluate",
    "Renderer": "render",
    "draw": "render",
    "ResultWriter": "writers",
    "frame_record": "writers",
    "openpose_record": "writers",
    "coco_records": "writers",
    "write_json_atomic": "writers",
    "load_openpose_json": "readers",
    "load_posecli_json": "readers",
    "list_models": "store",
    "store_dir": "store",
    "model_path": "store",
    "DEFAULT_MODEL": "store",
    "import_openvino_ir": "importers.openvino",
    "plan_batch": "batch",
    "run_job": "batch",
    "BatchPlan": "batch",
    "Job": "batch",
    "JobResult": "batch",
    "VideoOptions": "pipeline",
    "VideoRun": "pipeline",
    "run_batch_ray": "distributed",
    "import_ray": "distributed",
    "load_annotations": "evaluate",
    "METRIC_LABELS": "evaluate",
    "AtomicFile": "writers",
    "check_writable": "writers",
    "openpose_filename": "writers",
    "discard_pending": "writers",
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
    from .batch import BatchPlan, Job, JobResult, plan_batch, run_job
    from .distributed import import_ray, run_batch_ray
    from .errors import (
        DeviceError,
        InputError,
        MissingExtraError,
        ModelError,
        OutputError,
        ParserError,
        PoseError,
    )
    from .estimator import Maps, PoseEstimator
    from .evaluate import (
        METRIC_LABELS,
        CocoMetrics,
        evaluate_detections,
        evaluate_estimator,
        load_annotations,
    )
    from .importers.openvino import import_openvino_ir
    from .metadata import ModelInfo
    from .model import PoseModel, cuda_usable
    from .parser import PRESETS, ParserConfig, get_preset, parse
    from .pipeline import FrameResult, VideoOptions, VideoRun, iter_video_poses
    from .readers import load_openpose_json, load_posecli_json
    from .render import Renderer, draw
    from .skeleton import BODY25, COCO17_NAMES, COCO18, Skeleton, get_profile
    from .smooth import OneEuroConfig
    from .sources import VideoSource, read_image
    from .store import DEFAULT_MODEL, list_models, model_path, store_dir
    from .track import Tracker, TrackerConfig
    from .types import Frame, Person
    from .writers import (
        AtomicFile,
        ResultWriter,
        check_writable,
        coco_records,
        discard_pending,
        frame_record,
        openpose_filename,
        openpose_record,
        write_json_atomic,
    )

"""COCO keypoint evaluation: run an estimator over an annotated set, score it with OKS.

Entry points:

* :func:`evaluate_estimator` runs a :class:`~posecli.inference.estimator.PoseEstimator`
  over every image of a COCO-format keypoint annotation file (images found in a
  directory by their ``file_name``) and scores the results;
* :func:`evaluate_detections` scores an existing list of COCO keypoint results (the
  ``[{"image_id", "category_id", "keypoints", "score"}, ...]`` format) against annotations;
* :func:`coco_ap` is the AP alone of a model by name or path (training's validation).

The first two return :class:`CocoMetrics`. Scoring is pycocotools' ``COCOeval`` with
``iouType="keypoints"`` (object keypoint similarity), so the numbers are the ones papers
report on COCO. pycocotools is the optional extra ``eval``; it is imported only here, and
its progress prints are swallowed (the library never prints).
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from .errors import InputError, MissingExtraError
from .formats.records import coco_records
from .inference.preprocess import frame_from_reduced
from .io.images import read_image
from .io.jsonfile import MAX_JSON_DEPTH, json_depth, read_json
from .types import Frame

#: ``CocoMetrics`` fields in the order of ``COCOeval.stats`` for keypoints.
METRIC_NAMES = ("ap", "ap50", "ap75", "apm", "apl", "ar", "ar50", "ar75", "arm", "arl")
#: How the metrics are printed.
METRIC_LABELS = {
    "ap": "AP", "ap50": "AP50", "ap75": "AP75", "apm": "APM", "apl": "APL",
    "ar": "AR", "ar50": "AR50", "ar75": "AR75", "arm": "ARM", "arl": "ARL", "ap90": "AP@0.9",
}
#: Largest annotation file read (COCO's train2017 keypoints file is 238 MB).
MAX_ANNOTATION_BYTES = 2_000_000_000


@dataclass
class CocoMetrics:
    """COCO keypoint metrics (OKS) of one evaluation.

    ``ap`` .. ``arl``: COCOeval's ten keypoint statistics in [0, 1]; NaN where COCO leaves
    one undefined (e.g. APM when the set has no medium-sized people). ``ap90``: AP at
    OKS 0.9 alone (how precisely keypoints are placed, which ``ap`` averages away). ``images``: images
    scored. ``seconds``: wall time spent reading and estimating them (0 when the
    detections were given); ``timing``: that time split by stage (``read``, ``network``
    (preprocess + network + map fusion), ``parse``, and ``zoom`` when the zoom-in pass runs:
    its crops, network run, parsing and merging), in seconds. ``detections``: the COCO
    results list that was scored. ``zoom_crops``: crops the zoom-in pass ran.
    """

    ap: float = 0.0
    ap50: float = 0.0
    ap75: float = 0.0
    apm: float = 0.0
    apl: float = 0.0
    ar: float = 0.0
    ar50: float = 0.0
    ar75: float = 0.0
    arm: float = 0.0
    arl: float = 0.0
    ap90: float = math.nan
    images: int = 0
    seconds: float = 0.0
    timing: dict = field(default_factory=dict)
    detections: list = field(default_factory=list, repr=False)
    zoom_crops: int = 0

    @property
    def images_per_s(self) -> float:
        """Images per second over the whole run (NaN when nothing was timed)."""
        return self.images / self.seconds if self.seconds > 0 else math.nan

    def as_dict(self) -> dict:
        """The metrics as plain JSON values (NaN becomes None); detections left out."""
        out: dict = {}
        for name in METRIC_NAMES:
            v = getattr(self, name)
            out[name] = None if math.isnan(v) else round(v, 4)
        out["ap90"] = None if math.isnan(self.ap90) else round(self.ap90, 4)
        out["images"] = self.images
        ips = self.images_per_s
        out["images_per_s"] = None if math.isnan(ips) else round(ips, 3)
        out["seconds"] = round(self.seconds, 3)
        if self.timing:
            out["ms_per_image"] = {
                k: round(1000 * v / self.images, 2) if self.images else None for k, v in self.timing.items()
            }
        if "zoom" in self.timing:
            out["zoom_crops_per_image"] = round(self.zoom_crops / self.images, 3) if self.images else None
        out["detections"] = len(self.detections)
        return out


# ---------------------------------------------------------------------------------------------
# Annotations
# ---------------------------------------------------------------------------------------------
def load_annotations(annotations: str | Path | dict) -> dict:
    """A COCO keypoint annotation dict from a path or a dict, checked for the keys COCOeval needs.

    A dict is deep-copied (pycocotools adds keys to what it is given). Raises
    :class:`InputError` naming the file when it is missing, larger than
    :data:`MAX_ANNOTATION_BYTES`, not JSON, nested deeper than JSON files are, not
    COCO-shaped, or when an image's ``file_name`` is not a path inside the images folder.
    """
    path = None
    if isinstance(annotations, dict):
        if json_depth(annotations) > MAX_JSON_DEPTH:
            raise InputError(f"annotations nest more than {MAX_JSON_DEPTH} levels deep: not COCO annotations",
                             param="annotations")
        data = copy.deepcopy(annotations)
    else:
        path = Path(annotations)
        if not path.is_file():
            raise InputError("no such annotation file", path=path)
        data = read_json(path, max_bytes=MAX_ANNOTATION_BYTES, what="COCO annotation file")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise InputError("not a COCO annotation file (needs 'images' and 'annotations' lists)", path=path)
    for im in data["images"]:
        if not isinstance(im, dict) or "id" not in im:
            raise InputError("an entry of 'images' has no 'id'", path=path)
        if im.get("file_name") is not None:
            image_file_name(im, path)
    for ann in data["annotations"]:
        if not isinstance(ann, dict) or not {"image_id", "keypoints", "area"} <= ann.keys():
            raise InputError("an annotation lacks 'image_id', 'keypoints' or 'area' (not a keypoint file?)",
                             path=path)
        ann.setdefault("category_id", 1)
        ann.setdefault("iscrowd", 0)
    if not data.get("categories"):
        data["categories"] = [{"id": 1, "name": "person", "supercategory": "person"}]
    return data


def image_file_name(im: dict, path: Path | None) -> str:
    """An image's ``file_name`` when it is a relative path that stays inside the images
    folder (no absolute path, no ``..``, no NUL); :class:`InputError` naming the annotation
    file and the entry otherwise. A symbolic link inside the folder that points out of it
    is the user's own choice and is followed."""
    name = im.get("file_name")
    if not isinstance(name, str) or not name:
        raise InputError(f"image {im.get('id')!r} has no 'file_name' (a string) in the annotations", path=path)
    parts = Path(name).parts
    if Path(name).is_absolute() or Path(name).drive or ".." in parts or "\x00" in name:
        shown = name.encode("unicode_escape").decode("ascii")[:120]
        raise InputError(f"image {im.get('id')!r}: file_name '{shown}' is not a path inside the images folder "
                         "(absolute, or going up with '..')", path=path)
    return name


def coco_images(annotations: dict, images_dir: str | Path) -> list[tuple[int, Path]]:
    """``(image_id, path)`` for every image of the annotations, by id; paths from ``file_name``,
    each checked to stay inside ``images_dir`` (see :func:`_check_file_name`)."""
    root = Path(images_dir)
    out = []
    for im in sorted(annotations["images"], key=lambda im: im["id"]):
        out.append((int(im["id"]), root / image_file_name(im, None)))
    return out


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------
def _pycocotools(caller: str):
    """(COCO, COCOeval) classes, or :class:`MissingExtraError` saying ``caller`` needs the eval extra."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise MissingExtraError("pycocotools", "eval", caller) from None
    return COCO, COCOeval


def check_detections(detections: Iterable[dict]) -> list[dict]:
    """Copies of COCO keypoint results (``category_id`` 1 where missing); :class:`InputError`
    when one is not a dict with a ``keypoints`` list of x, y, v triples and a ``score``."""
    dets = []
    for d in detections:
        kp = d.get("keypoints") if isinstance(d, dict) else None
        if not isinstance(kp, (list, tuple)) or len(kp) % 3 or "score" not in d:
            raise InputError("a detection lacks a 'keypoints' list of x, y, v triples or a 'score'")
        dets.append({"category_id": 1, **d})
    return dets


def evaluate_detections(
    annotations: str | Path | dict,
    detections: Iterable[dict],
    image_ids: Iterable[int] | None = None,
) -> CocoMetrics:
    """Score COCO keypoint results against annotations (COCOeval, OKS).

    ``annotations``: a COCO keypoint file path or its dict; ``detections``: COCO results
    (``image_id``, ``category_id``, 51 ``keypoints``, ``score``), not modified;
    ``image_ids``: score only these images (default: every image of the annotations).
    No detections score 0 everywhere. Raises :class:`InputError` when a detection names an
    image the annotations do not have, and :class:`MissingExtraError` without pycocotools.
    """
    COCO, COCOeval = _pycocotools("evaluate_detections()")
    data = load_annotations(annotations)
    dets = [dict(d) for d in detections]
    known = {int(im["id"]) for im in data["images"]}
    ids = sorted(known) if image_ids is None else sorted({int(i) for i in image_ids})
    unknown = sorted({int(d.get("image_id", -1)) for d in dets} - known)
    if unknown:
        more = f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""
        raise InputError(f"detections name image ids not in the annotations: {unknown[:5]}{more}")
    dets = check_detections(dets)
    metrics = CocoMetrics(images=len(ids), detections=dets)
    if not dets or not ids:
        return metrics

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = data
        gt.createIndex()
        dt = gt.loadRes([dict(d) for d in dets])  # loadRes adds area, bbox, id to each
        ev = COCOeval(gt, dt, iouType="keypoints")
        ev.params.imgIds = ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    for name, value in zip(METRIC_NAMES, ev.stats):
        setattr(metrics, name, math.nan if value < 0 else float(value))
    metrics.ap90 = _ap_at(ev, _OKS_090)
    return metrics


# Index of OKS 0.9 in COCOeval's thresholds 0.50:0.05:0.95.
_OKS_090 = 8


def _ap_at(ev, t: int) -> float:
    """AP at COCOeval's t-th OKS threshold alone (all areas, most detections); NaN if undefined."""
    precision = ev.eval["precision"][t, :, :, 0, -1]  # (recall, category)
    valid = precision[precision > -1]
    return float(valid.mean()) if valid.size else math.nan


# ---------------------------------------------------------------------------------------------
# Running an estimator
# ---------------------------------------------------------------------------------------------
def evaluate_estimator(
    estimator,
    annotations: str | Path | dict,
    images_dir: str | Path,
    *,
    limit: int | None = None,
    on_image: Callable[[int, int, Frame, int], None] | None = None,
) -> CocoMetrics:
    """Run ``estimator`` over the annotated images and score the people it finds.

    ``estimator``: a :class:`~posecli.inference.estimator.PoseEstimator` (its ``maps`` and ``parse``
    are timed separately). ``images_dir``: where the ``file_name`` of each image lies.
    ``limit``: only the first N images by id (scored against those images only).
    ``on_image(done, total, frame, image_id)`` is called after each image (progress, writers).
    Raises :class:`InputError` for a missing or unreadable image, naming it.
    """
    _pycocotools("evaluate_estimator()")  # fail before the long part, not after it
    data = load_annotations(annotations)
    items = coco_images(data, images_dir)
    if limit is not None:
        items = items[: max(0, int(limit))]
    detections: list[dict] = []
    timing = {"read": 0.0, "network": 0.0, "parse": 0.0}
    zoom = getattr(estimator, "zoom_stats", None)
    if zoom is not None and getattr(estimator, "zoom", None) is not None:
        timing["zoom"] = 0.0
    crops = zoom.crops if zoom is not None else 0
    total = len(items)
    for done, (image_id, path) in enumerate(items, start=1):
        t0 = time.perf_counter()
        # Decoded as `posecli image` decodes it, so --out holds what a user would get.
        decoded = estimator.read_file(path) if hasattr(estimator, "read_file") else None
        image = decoded.image if decoded is not None else read_image(path)
        t1 = time.perf_counter()
        maps = estimator.maps(image)
        t2 = time.perf_counter()
        zoom_s = zoom.seconds if zoom is not None else 0.0
        # the zoom-in pass needs the pixels; estimators without one keep the plain signature
        extra = {"image": image} if "zoom" in timing else {}
        frame = estimator.parse(maps, source=str(path), **extra)
        t3 = time.perf_counter()
        zoom_s = (zoom.seconds - zoom_s) if zoom is not None else 0.0
        if decoded is not None:
            frame = frame_from_reduced(frame, decoded.size_wh, decoded.factor)
        timing["read"] += t1 - t0
        timing["network"] += t2 - t1
        timing["parse"] += t3 - t2 - zoom_s
        if "zoom" in timing:
            timing["zoom"] += zoom_s
        detections.extend(coco_records(frame, image_id))
        if on_image is not None:
            on_image(done, total, frame, image_id)
    metrics = evaluate_detections(data, detections, image_ids=[i for i, _ in items])
    metrics.seconds = sum(timing.values())
    metrics.timing = timing
    if "zoom" in timing:
        metrics.zoom_crops = zoom.crops - crops
    return metrics


def coco_ap(
    model,
    annotations: str | Path | dict,
    images_dir: str | Path,
    *,
    height: int | None = None,
    parser: str = "default",
    device: str = "auto",
) -> float:
    """COCO keypoint AP of a model (a :class:`~posecli.network.session.PoseModel`, ONNX path or store
    name) on an annotated set, single scale: the one number training validation needs."""
    from .inference.estimator import PoseEstimator

    est = PoseEstimator(model, device=device, parser=parser, height=height)
    ap = evaluate_estimator(est, annotations, images_dir).ap
    return 0.0 if math.isnan(ap) else ap

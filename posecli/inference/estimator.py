"""From a BGR image to people, in three stages: preprocess, infer, postprocess.

:class:`PoseEstimator` is the library's main entry point::

    from posecli import PoseEstimator
    est = PoseEstimator()                 # default model, auto device
    frame = est(cv2.imread("photo.jpg"))  # Frame with people in image pixels

which is, stage by stage::

    inputs = est.preprocess(image)        # letterboxed tensors, one per scale
    maps = est.infer(inputs)              # the network's maps, fused over scales and flip
    frame = est.postprocess(maps, image=image)   # parser, zoom-in, people in image pixels
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError
from ..io.images import as_bgr
from ..maps import Letterbox, Maps, affine_of, base_letterbox, letterbox, rescale, unflip_maps
from ..network.session import PoseModel
from ..network.tensor import to_tensor
from ..parser import ParserConfig, get_preset, parse, parse_with_peaks
from ..types import Frame, Person, strongest
from .modes import get_mode, resolve
from .preprocess import clip_to_image
from .zoom import ZoomConfig, cut, inside, merge, plan_crops


@dataclass(frozen=True)
class NetworkInputs:
    """What :meth:`PoseEstimator.preprocess` makes of one image: per scale, a (1, 3, h, w)
    float32 tensor and its :class:`Letterbox`; ``base`` is the letterbox of the first scale
    (the grid the maps are fused on)."""

    scales: tuple[tuple[np.ndarray, Letterbox], ...]
    base: Letterbox


@dataclass
class ZoomStats:
    """What the zoom-in pass cost: images it looked at, crops, network runs, seconds."""

    images: int = 0
    crops: int = 0
    runs: int = 0
    seconds: float = 0.0


class PoseEstimator:
    """A loaded model plus preprocessing and parser settings; call it on BGR images.

    ``model``: a :class:`PoseModel`, a store name or an ONNX path (None: the default model).
    ``mode``: a named speed/accuracy setting (``fast``, ``balanced``, ``accurate``; see
    :mod:`posecli.inference.modes`, default ``fast``) giving ``height``, ``scales``, ``flip``
    and ``zoom`` wherever they are left None.
    ``height``: network input height (default: the model's native height).
    ``scales``: multiples of ``height`` whose maps are averaged; ``flip``: also average
    with the mirrored image. ``parser``: a preset name or a :class:`ParserConfig`;
    ``parser_options`` override single fields of it. ``max_people``: keep the N
    highest-scoring people per image (None: all). ``part_candidates``: also put every part
    candidate (NMS peak) in ``frame.extra["part_candidates"]``: part name -> (M, 3) x, y,
    score in image pixels. ``keep_maps``: put the fused :class:`Maps` in ``frame.extra["maps"]``.
    ``runtime``: ``auto``, ``onnxruntime`` or ``openvino`` (see :meth:`PoseModel.load`).
    ``zoom``: the zoom-in pass for small
    people (True or a :class:`~posecli.inference.zoom.ZoomConfig`; see
    :mod:`posecli.inference.zoom`); it runs where the image is at hand (:meth:`__call__`,
    :meth:`estimate_file`, :meth:`parse` given ``image``). ``zoom_stats`` counts its work.
    """

    def __init__(
        self,
        model: PoseModel | str | None = None,
        *,
        device: str = "auto",
        precision: str = "auto",
        profile: str | None = None,
        parser: str | ParserConfig = "default",
        parser_options: dict | None = None,
        mode: str | None = None,
        height: int | None = None,
        scales: Sequence[float] | None = None,
        flip: bool | None = None,
        zoom: bool | ZoomConfig | None = None,
        threads: int | None = None,
        max_people: int | None = None,
        part_candidates: bool = False,
        keep_maps: bool = False,
        runtime: str = "auto",
    ):
        if max_people is not None and (isinstance(max_people, bool) or not isinstance(max_people, (int, np.integer))
                                       or max_people < 1):
            raise InputError(f"max_people={max_people!r}: must be a whole number of at least 1 (or None)")
        if isinstance(model, PoseModel):
            self.model = model
        else:
            self.model = PoseModel.load(model, device=device, precision=precision, profile=profile, threads=threads,
                                        runtime=runtime)
        config = get_preset(parser) if isinstance(parser, str) else parser
        if isinstance(parser, str) and parser.lower() == "default":
            # the model's keypoint offset, unless parser_options name it (below); the
            # reference presets parse as theirs do
            dx, dy = self.model.info.keypoint_offset
            config = dataclasses.replace(config, peak_offset_x=dx, peak_offset_y=dy)
        if parser_options:
            config = dataclasses.replace(config, **parser_options)
        self.parser_config = config
        info = self.model.info
        self.mode = get_mode(mode).name
        chosen = resolve(mode, height=height, scales=scales, flip=flip, zoom=zoom)
        height, scales, zoom = chosen["height"], chosen["scales"], chosen["zoom"]
        self.height = int(height or info.size_hw[0])
        if self.height < info.stride:
            raise InputError(f"height={self.height}: below the model's stride {info.stride}")
        self.scales = tuple(float(s) for s in scales) or (1.0,)
        if not all(math.isfinite(s) and s > 0 for s in self.scales):
            raise InputError(f"scales={self.scales}: must be positive, finite numbers")
        self.flip = chosen["flip"]
        if zoom is True:
            zoom = ZoomConfig()
        elif zoom is False:
            zoom = None
        elif zoom is not None and not isinstance(zoom, ZoomConfig):
            raise InputError(f"zoom={zoom!r}: must be a bool or a ZoomConfig")
        if zoom is not None and zoom.crop_size % info.stride:
            raise InputError(f"zoom crop_size={zoom.crop_size}: not a multiple of the model's stride {info.stride}")
        self.zoom: ZoomConfig | None = zoom
        # The parser run that also keeps the weak partial people the zoom pass looks at again.
        self._candidates_config = None if zoom is None else config.with_(
            min_parts=max(1, min(config.min_parts, zoom.min_parts_weak)), min_score=0.0,
            peak_threshold=min(config.peak_threshold, zoom.candidate_threshold))
        self.zoom_stats = ZoomStats()
        self.max_people = None if max_people is None else int(max_people)
        self.part_candidates = bool(part_candidates)
        self.keep_maps = bool(keep_maps)

    @property
    def skeleton(self):
        return self.model.info.skeleton

    # -- the pipeline ---------------------------------------------------------------------------
    def __call__(self, image, source: str = ""):
        """People in one BGR (H, W, 3) uint8 image, in image pixels.

        ``image`` may also be an image file's path (``str`` or ``Path``: decoded as
        :meth:`estimate_file` does, EXIF orientation applied; ``source`` defaults to the
        path), or a list or tuple of images and paths: then a list of Frames, one per item,
        in order. Anything else is an :class:`InputError` naming ``image``.
        """
        if isinstance(image, (str, os.PathLike)):
            frame = self.estimate_file(image)[0]
            frame.source = source or frame.source
            return frame
        if isinstance(image, (list, tuple)):
            if any(isinstance(item, (list, tuple)) for item in image):
                raise InputError("image: a list holds images (arrays) or paths, not lists", param="image")
            return [self(item) for item in image]
        if not isinstance(image, np.ndarray):
            raise InputError(f"image: expected a BGR image (a NumPy array), an image file's path, or a list of "
                             f"them; got {type(image).__name__}", param="image")
        image = as_bgr(image)
        inputs = self.preprocess(image)
        maps = self.infer(inputs)
        return self.postprocess(maps, source=source, image=image)

    def preprocess(self, image: np.ndarray) -> NetworkInputs:
        """Stage 1: the image letterboxed at each scale's height (resized keeping its aspect,
        padded to the stride) and normalised into the network's input tensor."""
        image = as_bgr(image)
        info = self.model.info
        tensors = []
        for s in self.scales:
            height = max(info.stride, int(round(self.height * s)))
            padded, box = letterbox(image, height, info.stride, info.pad_value)
            tensors.append((to_tensor(padded, info), box))
        return NetworkInputs(tuple(tensors), base_letterbox(image.shape, self.height, info.stride))

    def infer(self, inputs: NetworkInputs) -> Maps:
        """Stage 2: the network on each scale (and its mirror with ``flip``), the maps of
        every scale resampled onto the base grid and averaged."""
        acc_hm = acc_paf = 0.0
        for batch, box in inputs.scales:
            hm, paf = self._run_tensor(batch)
            hm, paf = hm[0], paf[0]
            if box != inputs.base:
                hm, paf = self._to_grid(hm, paf, box, inputs.base)
            acc_hm = acc_hm + hm
            acc_paf = acc_paf + paf
        n = len(inputs.scales)
        return Maps(acc_hm / n, acc_paf / n, inputs.base, self.model.info.stride)

    def postprocess(self, maps: Maps, source: str = "", index: int | None = None, timestamp: float | None = None,
                    image: np.ndarray | None = None) -> Frame:
        """Stage 3: the parser on fused maps, keypoints mapped back to the image's pixels (and
        kept inside it), the strongest ``max_people``.

        With the zoom-in pass on and the (H, W, 3) BGR ``image`` the maps came from, small
        people are looked at again (one more network run) and merged in. Part candidates
        (``part_candidates``) are the peaks of these maps: a person refined by the zoom-in
        pass has keypoints found in its crop instead.
        """
        zooming = self.zoom is not None and image is not None
        config = self._candidates_config if zooming else self.parser_config
        peaks = None
        if self.part_candidates:
            found, peaks = parse_with_peaks(maps.heatmaps, maps.pafs, self.skeleton, config, stride=maps.stride)
        else:
            found = parse(maps.heatmaps, maps.pafs, self.skeleton, config, stride=maps.stride)
        people = [Person(maps.box.to_image(p.xy), p.scores, p.score, p.skeleton, p.track_id) for p in found]
        if zooming:
            kept, weak = self._split(people)
            people = self._zoom_in(as_bgr(image), kept, weak, maps.box.scale_xy[1])
        people = strongest(people, self.max_people)
        people = [Person(clip_to_image(p.xy, maps.box.image_wh), p.scores, p.score, p.skeleton, p.track_id)
                  for p in people]
        frame = Frame(people, maps.box.image_wh, source=source, index=index, timestamp=timestamp)
        if peaks is not None:
            # the parser's own peaks: not the weaker ones the zoom-in pass also looks at
            frame.extra["part_candidates"] = candidates_in_image(peaks, maps.box, self.skeleton,
                                                                 self.parser_config.peak_threshold)
        if self.keep_maps:
            frame.extra["maps"] = maps
        return frame

    parse = postprocess  # the name the video pipeline and the batch engines call it by

    def maps(self, image: np.ndarray) -> Maps:
        """Network maps for one image, fused over scales and flip, on the base-scale grid
        (stages 1 and 2)."""
        return self.infer(self.preprocess(image))

    def estimate_file(self, path, *, keep_image: bool = False) -> tuple[Frame, np.ndarray | None]:
        """People in an image file, in the file's own pixels (EXIF orientation applied).

        Returns ``(frame, image)``; ``image`` is the decoded (H, W, 3) BGR picture when
        ``keep_image`` (e.g. to draw on), else None, and then a JPEG far larger than the
        network needs is decoded at 1/2, 1/4 or 1/8 size (faster, far less memory) with the
        keypoints mapped back to full-size pixels.
        """
        return self.estimate_decoded(self.read_file(path, keep_image=keep_image), path, keep_image=keep_image)

    def read_file(self, path, *, keep_image: bool = False):
        """The decoding half of :meth:`estimate_file`: a :class:`~posecli.io.images.ReducedImage`,
        reduced only where the network cannot tell, so that a caller can decode the next photo
        while the network runs this one."""
        from ..io.images import read_image_reduced

        if keep_image or self.keep_maps:  # saved maps map to the decoded image's pixels: decode it whole
            return read_image_reduced(path, None)
        first = self.height * max(self.scales)
        # The zoom-in pass crops small people from the photo's pixels: keep what it can use
        # (it sizes its crops by the base scale's view, whatever the other scales).
        need = 2 * int(first + 0.5)
        if self.zoom is not None:
            need = max(need, self.zoom.decode_height(self.height))
        return read_image_reduced(path, need)

    def estimate_decoded(self, decoded, path, *, keep_image: bool = False) -> tuple[Frame, np.ndarray | None]:
        """The rest of :meth:`estimate_file` on what :meth:`read_file` returned."""
        from .preprocess import frame_from_reduced

        frame = self(decoded.image, source=str(path))
        frame = frame_from_reduced(frame, decoded.size_wh, decoded.factor)
        return frame, (decoded.image if keep_image else None)

    def maps_batch(self, images: Iterable[np.ndarray]) -> list[Maps]:
        """Single-scale maps for frames of one size in one network run (video, batches)."""
        return self.submit_maps(images)()

    def expect(self, image_shape, frames: int, batch_size: int = 1) -> None:
        """Tell the model that ``frames`` images of ``image_shape`` (H, W, ...) are coming in
        batches of ``batch_size`` (a video), so that it can prepare for their input size."""
        if self.scales != (1.0,) or frames <= 0:
            return  # several scales: sizes vary per scale, frames run one by one
        box = base_letterbox(image_shape, self.height, self.model.info.stride)
        n = batch_size * (2 if self.flip else 1)
        self.model.expect((n, 3, box.input_wh[1], box.input_wh[0]), -(-frames // batch_size))

    def submit_maps(self, images: Iterable[np.ndarray]) -> Callable[[], list[Maps]]:
        """Start :meth:`maps_batch`; returns a function that waits for the maps.

        The network may run several submitted batches at once (OpenVINO's THROUGHPUT
        streams), so a video keeps it busy; each result is exactly what :meth:`maps_batch`
        gives for the same frames.
        """
        info = self.model.info
        padded, boxes = zip(*(letterbox(as_bgr(im), self.height, info.stride, info.pad_value) for im in images))
        batch = to_tensor(np.stack(padded), info)
        if self.flip:
            batch = np.ascontiguousarray(np.concatenate([batch, batch[..., ::-1]], axis=0))
        pending = self.model.submit(batch)
        n = len(boxes)

        def finish() -> list[Maps]:
            hm, paf = pending()
            if self.flip:
                hm, paf = self._merge_flipped(hm, paf, n)
            return [Maps(hm[i], paf[i], boxes[i], info.stride) for i in range(n)]

        return finish

    # -- zoom-in pass -----------------------------------------------------------------------------
    def _split(self, people: list[Person]) -> tuple[list[Person], list[Person]]:
        """People the parser's own pruning keeps, and the weak rest (zoom candidates only)."""
        cfg = self.parser_config
        kept, weak = [], []
        for p in people:
            (kept if p.num_visible >= cfg.min_parts and p.score >= cfg.min_score else weak).append(p)
        return kept, weak

    def _zoom_in(self, image: np.ndarray, kept: list[Person], weak: list[Person], first_scale: float) -> list[Person]:
        """Crop, run as one batch, parse, map back, merge (see :mod:`posecli.inference.zoom`)."""
        zoom = self.zoom
        t0 = time.perf_counter()
        crops = plan_crops(kept, weak, first_scale, zoom)
        self.zoom_stats.images += 1
        if not crops:
            self.zoom_stats.seconds += time.perf_counter() - t0
            return kept
        info = self.model.info
        side = zoom.crop_size
        batch = to_tensor(cut(image, crops, side, info.pad_value), info)
        hm, paf = self._run_tensor(batch)
        found = []
        for i, crop in enumerate(crops):
            for p in parse(hm[i], paf[i], self.skeleton, self.parser_config, stride=info.stride):
                if inside(p, side, zoom.edge):
                    found.append(Person(crop.to_image(p.xy), p.scores, p.score, p.skeleton))
        people = merge(kept, found, zoom, first_cell=info.stride / first_scale)
        self.zoom_stats.crops += len(crops)
        self.zoom_stats.runs += 1
        self.zoom_stats.seconds += time.perf_counter() - t0
        return people

    # -- helpers ----------------------------------------------------------------------------------
    def _run_tensor(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.flip:
            return self.model.run(batch)
        both = np.concatenate([batch, batch[..., ::-1]], axis=0)
        hm, paf = self.model.run(np.ascontiguousarray(both))
        return self._merge_flipped(hm, paf, batch.shape[0])

    def _merge_flipped(self, hm, paf, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Maps of ``n`` frames followed by their mirrors -> the average of both views."""
        fhm, fpaf = unflip_maps(hm[n:], paf[n:], self.skeleton)
        return (hm[:n] + fhm) / 2, (paf[:n] + fpaf) / 2

    def _to_grid(self, hm, paf, box: Letterbox, base: Letterbox):
        """Resample maps of another scale onto the base grid (one affine per axis)."""
        st = self.model.info.stride
        hb, wb = base.input_wh[1] // st, base.input_wh[0] // st
        # base map cell -> base input px -> image px -> this input px -> this map cell
        m = affine_of(lambda uv: rescale(box.to_input(base.to_image(rescale(uv, st))), 1 / st)).astype(np.float32)
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP

        def warp(maps):
            hwc = np.ascontiguousarray(maps.transpose(1, 2, 0))
            out = cv2.warpAffine(hwc, m, (wb, hb), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            return out.reshape(hb, wb, -1).transpose(2, 0, 1)

        return warp(hm), warp(paf)


def candidates_in_image(peaks, box: Letterbox, skeleton, min_score: float = 0.0) -> dict[str, np.ndarray]:
    """Part name -> (M, 3) x, y, score of its candidates scoring at least ``min_score``, in
    image pixels (inside the image and scores clipped to [0, 1], as people's keypoints are)."""
    xy = clip_to_image(box.to_image(peaks.xy), box.image_wh)
    score = np.clip(peaks.score, 0.0, 1.0)
    out = {}
    for k, name in enumerate(skeleton.parts):
        lo, hi = int(peaks.start[k]), int(peaks.start[k + 1])
        keep = peaks.score[lo:hi] >= min_score
        out[name] = np.concatenate([xy[lo:hi][keep], score[lo:hi, None][keep]], axis=1)
    return out

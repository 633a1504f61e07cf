"""``runtime='auto'`` where OpenVINO measured faster: which input sizes run on OpenVINO, and how.

OpenVINO is fastest on a network compiled for one input size, which costs a compilation (a
few tenths of a second, less once cached in the store) and pays back only after enough
frames of that size. Its network with dynamic height and width needs no compilation per
size, but it prepares its kernels for each size the first time it sees it (tens of ms),
then runs that size nearly as fast as a network of its own. onnxruntime needs neither. So
:class:`MixedSession` routes each input:

- **a network of its own** for a size seen :attr:`~MixedSession.after` times
  (:data:`PATIENCE` times the break-even of the compilation against the time saved per
  frame) and for a video that says up front (:meth:`MixedSession.expect`) that at least
  :attr:`~MixedSession.pays_after` frames of one size are coming: those frames are sure to
  come, so no patience is needed;
- **the dynamic network** once the size's width bucket (:data:`WIDTH_STEP`) has been seen
  :attr:`~MixedSession.dynamic_after` times: the break-even of the first run's extra time,
  measured with the verdict, against the time saved per frame (paying the extra only after
  as many frames as it would have saved costs at most twice the best choice in hindsight).
  These inputs are padded on the right, with the letterbox's own pad colour, to a multiple
  of :data:`WIDTH_STEP`, and their maps cut back: photos of many sizes then share a few
  sizes (80 COCO photos: 31 widths at height 256, 6 buckets), so the kernels are prepared
  a few times, not once per photo;
- **onnxruntime** for the rest (one-off sizes before they pay back).

80 COCO photos of 31 sizes in ``accurate`` mode (Intel Xeon with AMX, 2 cores): 79 ms a
photo with every one-off size on onnxruntime (the rule before width buckets), 61 ms with
this routing, 48 ms with every bucket on the dynamic network from its first sight (what a
folder of same-camera photos approaches); docs/models.md has the whole-process figures.
The two runtimes' maps agree within the tolerance stated in tests/network/backends/test_openvino.py;
``runtime='onnxruntime'`` or ``'openvino'`` pins one for every frame.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import numpy as np

from .openvino import MAX_STATIC_SHAPES, PROVIDER

MIN_AFTER, MAX_AFTER = 2, 512
#: A size moves to OpenVINO after this many break-evens' worth of frames. Whether more
#: frames of the size will come is unknown (a folder of photos), so the compilation may
#: never pay back; waiting longer bounds that loss to 1/PATIENCE of the time saved per
#: frame times the frames seen, a few % of the onnxruntime time spent on the size so far.
PATIENCE = 3
NEVER = 2**62
#: Inputs on OpenVINO's dynamic network are padded to a width that is a multiple of this.
WIDTH_STEP = 64


def break_even(compile_s: float, onnxruntime_ms: float, openvino_ms: float) -> int:
    """Frames of one size after which OpenVINO's compilation has paid for itself."""
    saved = (onnxruntime_ms - openvino_ms) / 1000.0
    if saved <= 0:
        return MAX_AFTER
    return int(min(MAX_AFTER, max(MIN_AFTER, math.ceil(compile_s / saved))))


def switch_after(compile_s: float, onnxruntime_ms: float, openvino_ms: float) -> int:
    """Frames of one size after which it moves to OpenVINO: :data:`PATIENCE` break-evens."""
    return min(MAX_AFTER, PATIENCE * break_even(compile_s, onnxruntime_ms, openvino_ms))


def dynamic_after(new_size_extra_ms: float | None, onnxruntime_ms: float, openvino_ms: float) -> int:
    """Sightings of a width bucket from which it runs on OpenVINO's dynamic network: the
    first one when a new size there (``new_size_extra_ms`` more than a size seen before)
    costs no more than onnxruntime, else one more than the frames whose savings pay for that
    extra (NEVER when OpenVINO saves nothing or the extra is unknown)."""
    saved = onnxruntime_ms - openvino_ms
    if new_size_extra_ms is None or not math.isfinite(new_size_extra_ms) or saved <= 0:
        return NEVER
    loss = openvino_ms + max(0.0, new_size_extra_ms) - onnxruntime_ms
    if loss <= 0:
        return 1
    return int(min(MAX_AFTER, 1 + math.ceil(loss / saved)))


class MixedSession:
    """onnxruntime's session for one-off sizes, an OpenVINO session (opened on first need by
    ``open_openvino``) for recurring sizes and expected streams (see the module docstring)."""

    def __init__(self, onnxruntime_session, open_openvino: Callable[[], object], after: int, openvino=None,
                 *, pays_after: int | None = None, dynamic_after: int = NEVER):
        """``after``: times a size is seen before it gets a network of its own; ``pays_after``:
        frames a video must announce to get one at once (None: ``after``); ``dynamic_after``:
        times a width bucket is seen before it runs on the dynamic network (padded, once
        :meth:`pad_with` has said how)."""
        self.ort = onnxruntime_session
        self._open_openvino = open_openvino
        self._ov = openvino
        self.after = int(after)
        self.pays_after = self.after if pays_after is None else int(pays_after)
        self.dynamic_after = int(dynamic_after)
        self._pad: np.ndarray | None = None  # (1, C, 1, 1) input value of the pad colour
        self._stride = 0
        self._seen: dict[tuple, int] = {}
        self._bucket_seen: dict[tuple, int] = {}
        self._on_ov: set[tuple] = set()
        self._dynamic: set[tuple] = set()  # buckets run on the dynamic network so far
        self._lock = threading.Lock()

    def pad_with(self, value, stride: int) -> None:
        """Inputs for the dynamic network may be padded on the right with ``value`` (one
        normalised value per channel: the letterbox's pad colour) when their width and
        :data:`WIDTH_STEP` are multiples of the network's ``stride``."""
        value = np.asarray(value, np.float32).reshape(1, -1, 1, 1)
        stride = int(stride)
        with self._lock:
            self._pad, self._stride = (value, stride) if stride > 0 and WIDTH_STEP % stride == 0 else (None, 0)

    # -- what onnxruntime's InferenceSession offers ------------------------------------------------
    def get_inputs(self):
        return self.ort.get_inputs()

    def get_outputs(self):
        return self.ort.get_outputs()

    def get_modelmeta(self):
        return self.ort.get_modelmeta()

    def get_providers(self) -> list[str]:
        return [PROVIDER, *self.ort.get_providers()]

    def run(self, names: list[str], feeds: dict) -> list[np.ndarray]:
        (key, x), = feeds.items()
        route = self._route(tuple(x.shape))
        if route == "static":
            return self.openvino.run(names, feeds, static=True)
        if route == "dynamic":
            padded, width = self._padded(x)
            return self._cut(self.openvino.run(names, {key: padded}, dynamic=True), width, padded.shape[3])
        return self.ort.run(names, feeds)

    def submit(self, names: list[str], feeds: dict) -> Callable[[], list[np.ndarray]]:
        """Several requests in flight on OpenVINO for a size it runs; else run now on onnxruntime."""
        (key, x), = feeds.items()
        route = self._route(tuple(x.shape), hint="THROUGHPUT")
        if route == "static":
            return self.openvino.submit(names, feeds)
        if route == "dynamic":
            padded, width = self._padded(x)
            pending = self.openvino.submit(names, {key: padded}, dynamic=True)
            return lambda: self._cut(pending(), width, padded.shape[3])
        result = self.ort.run(names, feeds)
        return lambda: result

    def expect(self, shape: tuple, frames: int) -> None:
        """``frames`` inputs of ``shape`` are coming: move the size to OpenVINO now if they pay back."""
        if frames >= min(self.pays_after, self.after):
            with self._lock:
                self._seen[tuple(shape)] = max(self._seen.get(tuple(shape), 0), self.after - 1)

    @property
    def concurrent(self) -> bool:
        return True

    def wait_idle(self) -> None:
        if self._ov is not None:
            self._ov.wait_idle()

    @property
    def openvino(self):
        """The OpenVINO session, opened on first need (None when it cannot be opened: then
        every size stays on onnxruntime)."""
        from ...errors import PoseError

        with self._lock:
            if self._ov is None and min(self.after, self.dynamic_after) < NEVER:
                try:
                    self._ov = self._open_openvino()
                except PoseError:
                    self.after = self.dynamic_after = NEVER
            return self._ov

    def describe(self) -> dict:
        with self._lock:
            on_ov, dynamic = sorted(self._on_ov), sorted(self._dynamic)
        out = {"openvino_after_frames": self.after, "openvino_for_videos_of_frames": self.pays_after,
               "sizes_on_openvino": [list(s) for s in on_ov],
               "dynamic_openvino_after_frames": self.dynamic_after,
               "sizes_on_dynamic_openvino": [list(s) for s in dynamic]}
        if self._ov is not None:
            out.update(self._ov.describe())
        return out

    # -- routing -----------------------------------------------------------------------------------
    def _bucket(self, shape: tuple) -> tuple:
        """The shape an input of ``shape`` has on the dynamic network (width padded up)."""
        if self._pad is None or len(shape) != 4 or shape[3] % self._stride:
            return shape
        return (*shape[:3], -(-shape[3] // WIDTH_STEP) * WIDTH_STEP)

    def _route(self, shape: tuple, hint: str = "LATENCY") -> str | None:
        """``"static"``, ``"dynamic"`` (OpenVINO's networks) or None (onnxruntime) for an input
        of ``shape``, counting the sighting."""
        bucket = self._bucket(shape)
        with self._lock:
            if shape in self._on_ov:
                return "static"
            seen = self._seen[shape] = self._seen.get(shape, 0) + 1
            in_bucket = self._bucket_seen[bucket] = self._bucket_seen.get(bucket, 0) + 1
            own = seen >= self.after and len(self._on_ov) < MAX_STATIC_SHAPES
            dynamic = in_bucket >= self.dynamic_after
        if not (own or dynamic):
            return None
        ov = self.openvino
        if ov is None:
            return None
        if own and ov.has_room(shape, hint):
            with self._lock:
                self._on_ov.add(shape)
            return "static"
        if dynamic:
            with self._lock:
                self._dynamic.add(bucket)
            return "dynamic"
        return None

    def _padded(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """``x`` padded on the right to its bucket's width (the pad colour), and its own width."""
        width = x.shape[3]
        target = self._bucket(tuple(x.shape))[3]
        if target == width:
            return x, width
        out = np.empty((*x.shape[:3], target), np.float32)
        out[..., :width] = x
        out[..., width:] = self._pad
        return out, width

    @staticmethod
    def _cut(outputs: list[np.ndarray], width: int, padded_width: int) -> list[np.ndarray]:
        """Maps of a padded input cut back to the columns of its own ``width``."""
        if width == padded_width:
            return outputs
        return [np.ascontiguousarray(o[..., : o.shape[-1] * width // padded_width]) for o in outputs]

"""``runtime='auto'`` where OpenVINO measured faster: OpenVINO for input sizes that recur,
onnxruntime for the others.

OpenVINO is fast on a network compiled for one input size, and slow on a network with a
dynamic size whose size keeps changing (it prepares its kernels again at every change:
80 COCO photos of 19 sizes took 5x longer than on onnxruntime). Compiling a network for a
size takes a few tenths of a second (less once cached in the store), which pays back only
after enough frames of that size. So :class:`MixedSession` runs a size on onnxruntime
until it has been seen :attr:`MixedSession.after` times (:data:`PATIENCE` times the
break-even point computed from the measured times: compilation / time saved per frame),
then on an OpenVINO network of its own. A video says up front how many frames of one size are coming
(:meth:`MixedSession.expect`): those frames are sure to come, so no patience is needed and
a video of at least :attr:`MixedSession.pays_after` frames (the break-even point itself) goes
to OpenVINO from its first frame.

The two runtimes' maps agree within the tolerance stated in tests/test_runtime_openvino.py;
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


def break_even(compile_s: float, onnxruntime_ms: float, openvino_ms: float) -> int:
    """Frames of one size after which OpenVINO's compilation has paid for itself."""
    saved = (onnxruntime_ms - openvino_ms) / 1000.0
    if saved <= 0:
        return MAX_AFTER
    return int(min(MAX_AFTER, max(MIN_AFTER, math.ceil(compile_s / saved))))


def switch_after(compile_s: float, onnxruntime_ms: float, openvino_ms: float) -> int:
    """Frames of one size after which it moves to OpenVINO: :data:`PATIENCE` break-evens."""
    return min(MAX_AFTER, PATIENCE * break_even(compile_s, onnxruntime_ms, openvino_ms))


class MixedSession:
    """onnxruntime's session for one-off sizes, an OpenVINO session (opened on first need by
    ``open_openvino``) for sizes seen at least ``after`` times and for expected streams."""

    def __init__(self, onnxruntime_session, open_openvino: Callable[[], object], after: int, openvino=None,
                 *, pays_after: int | None = None):
        """``after``: times a size is seen before it moves; ``pays_after``: frames a video must
        announce to move at once (None: ``after``)."""
        self.ort = onnxruntime_session
        self._open_openvino = open_openvino
        self._ov = openvino
        self.after = int(after)
        self.pays_after = self.after if pays_after is None else int(pays_after)
        self._seen: dict[tuple, int] = {}
        self._on_ov: set[tuple] = set()
        self._lock = threading.Lock()

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
        (x,) = feeds.values()
        if self._use_openvino(tuple(x.shape)):
            return self.openvino.run(names, feeds, static=True)
        return self.ort.run(names, feeds)

    def submit(self, names: list[str], feeds: dict) -> Callable[[], list[np.ndarray]]:
        """Several requests in flight on OpenVINO for a size it runs; else run now on onnxruntime."""
        (x,) = feeds.values()
        if self._use_openvino(tuple(x.shape), hint="THROUGHPUT"):
            return self.openvino.submit(names, feeds)
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
            if self._ov is None and self.after < NEVER:
                try:
                    self._ov = self._open_openvino()
                except PoseError:
                    self.after = NEVER
            return self._ov

    def describe(self) -> dict:
        with self._lock:
            on_ov = sorted(self._on_ov)
        out = {"openvino_after_frames": self.after, "openvino_for_videos_of_frames": self.pays_after,
               "sizes_on_openvino": [list(s) for s in on_ov]}
        if self._ov is not None:
            out.update(self._ov.describe())
        return out

    def _use_openvino(self, shape: tuple, hint: str = "LATENCY") -> bool:
        with self._lock:
            if shape in self._on_ov:
                return True
            seen = self._seen[shape] = self._seen.get(shape, 0) + 1
            if seen < self.after or len(self._on_ov) >= MAX_STATIC_SHAPES:
                return False
        ov = self.openvino
        if ov is None or not ov.has_room(shape, hint):
            return False
        with self._lock:
            self._on_ov.add(shape)
        return True

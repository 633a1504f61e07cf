"""The OpenVINO runtime (CPU) as a session behind :class:`~posecli.network.session.PoseModel`.

:class:`OpenVinoSession` answers the part of onnxruntime's ``InferenceSession`` that
PoseModel uses (``get_inputs``, ``get_outputs``, ``get_modelmeta``, ``get_providers``,
``run``), so PoseModel keeps one code path, and adds :meth:`OpenVinoSession.submit` for
several requests in flight.

How it runs the ONNX file:

- Compiled networks are kept per input shape. A shape's first run uses one compiled
  network with dynamic height and width; from its second run on (a video, a bench, a
  folder of same-sized photos) the shape gets a network compiled for it alone, which is
  about 8 % faster (measured on the INT8 model) and costs one compilation. At most
  :data:`MAX_STATIC_SHAPES` shapes are compiled that way per hint; others stay dynamic.
- ``run`` uses the LATENCY hint (one stream using every core: one frame as fast as
  possible); ``submit`` the THROUGHPUT hint (several streams, a queue of requests:
  frames per second for video and folders).
- Compiled networks are cached in the model store (``CACHE_DIR``), so a later process
  imports them instead of compiling again.
- The graph is read as the ONNX file says, then two QDQ shapes the INT8 import wrote for
  onnxruntime are given back in the form OpenVINO compiles as it does the IR: int8 weights
  on the last convolutions, one fusable requantization ahead of each Elu
  (:mod:`.openvino_rewrite`).
- Precision: ``INFERENCE_PRECISION_HINT=f32`` for every model. OpenVINO would otherwise
  run float layers in bf16 on CPUs that have it (AMX Xeons, this AMD EPYC with
  AVX512_BF16): float32 models would lose precision, and even the INT8 model's few float
  layers then gave maps that differed by up to 0.02 between the dynamic and the static
  network of one shape. With f32 the INT8 model is exactly as fast here and its maps do
  not depend on which network ran.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import MissingExtraError, ModelError, first_line

PROVIDER = "OpenVINO:CPU"
CACHE_DIRNAME = "openvino-cache"
STATIC_AFTER = 2  # a shape run this many times (latency hint) gets its own static network
MAX_STATIC_SHAPES = 4


# Request queues with requests possibly in flight. Their completion callbacks take the GIL;
# one that fires while the interpreter shuts down aborts the process ("FATAL: exception not
# rethrown", seen on Ctrl-C during a video), so every queue is drained before that.
_QUEUES: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _drain_all() -> None:
    for compiled in list(_QUEUES):
        compiled.wait_idle()


def import_openvino():
    """The ``openvino`` module, or :class:`MissingExtraError` naming the extra to install."""
    from ..runtimes import import_openvino as import_quietly

    try:
        return import_quietly()  # its telemetry declines: no files in the user's home
    except ImportError:
        raise MissingExtraError("openvino", "openvino", "runtime='openvino'") from None


@dataclass(frozen=True)
class Node:
    """An input or output as onnxruntime describes it: name, shape (None where dynamic)."""

    name: str
    shape: list
    type: str = "tensor(float)"


@dataclass(frozen=True)
class ModelMeta:
    """The ONNX file's ``metadata_props`` (what onnxruntime calls ``custom_metadata_map``)."""

    custom_metadata_map: dict = field(default_factory=dict)


class OpenVinoSession:
    """An ONNX model on OpenVINO's CPU plugin. ``path``: the ONNX file; ``threads``: CPU
    threads per request (None: OpenVINO's choice); ``cache_dir``: where compiled networks
    are cached (None: no cache)."""

    def __init__(self, path: str | Path, *, threads: int | None = None, cache_dir: Path | None = None):
        ov = import_openvino()
        self.path = Path(path)
        self._ov = ov
        self._core = ov.Core()
        if cache_dir is not None:
            self._core.set_property({"CACHE_DIR": str(cache_dir)})
        self.cache_dir = cache_dir
        try:
            self._model = self._core.read_model(str(path))
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError with a long trace text
            raise ModelError(f"OpenVINO cannot read the model ({first_line(exc)})", path=path) from None
        if len(self._model.inputs) != 1:
            raise ModelError(f"expected one input, the network has {len(self._model.inputs)}", path=path)
        from .openvino_rewrite import rewrite_for_openvino

        try:
            self.rewrites = rewrite_for_openvino(self._model)  # the IR's kernels back (see there)
        except Exception as exc:  # noqa: BLE001 - a graph the rewrite did not foresee: run it as written
            self._model = self._core.read_model(str(path))
            self.rewrites = {"skipped": first_line(exc)}
        self._config: dict = {}
        if threads:
            self._config["INFERENCE_NUM_THREADS"] = int(threads)
        # float layers in float32: bf16 (OpenVINO's default where the CPU has it) changed the
        # INT8 model's maps by up to 0.02 between its dynamic and static networks
        self._config["INFERENCE_PRECISION_HINT"] = "f32"
        self._lock = threading.Lock()
        self._compiled: dict = {}  # (hint, shape or None) -> _Compiled
        self._seen: dict = {}  # shape -> latency runs so far
        self.compile_s = 0.0  # how long the last compilation took

    # -- what onnxruntime's InferenceSession offers ------------------------------------------------
    def get_inputs(self) -> list[Node]:
        return [_node(port) for port in self._model.inputs]

    def get_outputs(self) -> list[Node]:
        return [_node(port) for port in self._model.outputs]

    def get_providers(self) -> list[str]:
        return [PROVIDER]

    def get_modelmeta(self) -> ModelMeta:
        meta: dict = {}
        info = self._model.get_rt_info()
        if "framework" in info:  # an ONNX file's metadata_props, as the ONNX frontend keeps them
            for key, value in info["framework"].items():
                meta[str(key)] = value.astype(str) if hasattr(value, "astype") else str(value)
        return ModelMeta(meta)

    def run(self, names: list[str], feeds: dict, static: bool = False, dynamic: bool = False) -> list[np.ndarray]:
        """Outputs ``names`` for the single input in ``feeds``, one request (LATENCY hint).

        ``static``: use (compile) the network for this input shape alone now; ``dynamic``:
        the network with dynamic height and width, whatever the shape's count (neither: a
        shape run twice gets a network of its own)."""
        (x,) = feeds.values()
        shape = tuple(x.shape)
        if dynamic:
            compiled = self._get("LATENCY", shape, static=False)
        else:
            compiled = self._get("LATENCY", shape) if static else self._latency(shape)
        with compiled.lock:
            results = compiled.request.infer({0: x})
            return [np.array(results[compiled.port(n)], copy=True) for n in names]

    # -- several requests in flight --------------------------------------------------------------
    def submit(self, names: list[str], feeds: dict, dynamic: bool = False) -> Callable[[], list[np.ndarray]]:
        """Start one request (THROUGHPUT hint); returns a function that waits for its outputs.

        Blocks only while every request of the queue is busy. Outputs are copied out when a
        request completes, so a handle that is never waited for holds no request.
        ``dynamic``: on the network with dynamic height and width (else the shape's own,
        while there is room for one).
        """
        (x,) = feeds.values()
        compiled = self._get("THROUGHPUT", tuple(x.shape), static=not dynamic)
        future: Future = Future()
        compiled.queue.start_async({0: np.ascontiguousarray(x)}, (future, names, compiled))
        return lambda: future.result()

    def describe(self) -> dict:
        """Compiled networks so far and their settings (for ``models info``)."""
        with self._lock:
            items = list(self._compiled.items())
        return {
            "openvino": self._ov.__version__.split("-")[0],
            "config": dict(self._config),
            "rewrites": dict(self.rewrites),
            "compiled": [{"hint": hint, "shape": list(shape) if shape else "dynamic",
                          "precision": c.precision, "streams": c.streams} for (hint, shape), c in items],
        }

    @property
    def concurrent(self) -> bool:
        return True

    def wait_idle(self) -> None:
        """Wait until no request of this session is running (their results are dropped)."""
        with self._lock:
            compiled = list(self._compiled.values())
        for c in compiled:
            c.wait_idle()

    def has_room(self, shape: tuple, hint: str = "LATENCY") -> bool:
        """True when ``shape`` has, or may still get, a network of its own for ``hint``."""
        with self._lock:
            if (hint, shape) in self._compiled:
                return True
            return sum(1 for (h, s) in self._compiled if h == hint and s is not None) < MAX_STATIC_SHAPES

    # -- compiled networks -------------------------------------------------------------------------
    def _latency(self, shape: tuple) -> _Compiled:
        with self._lock:
            seen = self._seen[shape] = self._seen.get(shape, 0) + 1
        return self._get("LATENCY", shape, static=seen >= STATIC_AFTER)

    def _get(self, hint: str, shape: tuple, static: bool = True) -> _Compiled:
        with self._lock:
            if (hint, shape) in self._compiled:
                return self._compiled[(hint, shape)]
            n_static = sum(1 for (h, s) in self._compiled if h == hint and s is not None)
            key = (hint, shape) if static and n_static < MAX_STATIC_SHAPES else (hint, None)
            if key in self._compiled:
                return self._compiled[key]
            compiled = self._compile(hint, key[1])
            self._compiled[key] = compiled
            return compiled

    def _compile(self, hint: str, shape: tuple | None) -> _Compiled:
        model = self._model
        if shape is not None:
            model = model.clone()
            model.reshape({model.inputs[0].get_any_name(): list(shape)})
        t0 = time.perf_counter()
        try:
            net = self._core.compile_model(model, "CPU", {**self._config, "PERFORMANCE_HINT": hint})
        except Exception as exc:  # noqa: BLE001 - any failure is this model's
            raise ModelError(f"OpenVINO cannot compile the model ({first_line(exc)})", path=self.path) from None
        compiled = _Compiled(net, hint, self._ov)
        self.compile_s = time.perf_counter() - t0
        return compiled


class _Compiled:
    """One compiled network with its request (LATENCY) or request queue (THROUGHPUT)."""

    def __init__(self, net, hint: str, ov):
        self.net = net
        self.lock = threading.Lock()
        self._ports = {}
        for port in net.outputs:
            for name in port.get_names():
                self._ports[name] = port
        precision = net.get_property("INFERENCE_PRECISION_HINT")
        self.precision = precision.get_type_name() if hasattr(precision, "get_type_name") else str(precision)
        self.streams = int(net.get_property("NUM_STREAMS"))
        if hint == "LATENCY":
            self.request = net.create_infer_request()
            self.queue = None
        else:
            self.request = None
            self.queue = ov.AsyncInferQueue(net, int(net.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
            self.queue.set_callback(self._done)
            _QUEUES.add(self)

    def wait_idle(self) -> None:
        if self.queue is not None:
            self.queue.wait_all()

    def port(self, name: str):
        return self._ports[name]

    def _done(self, request, userdata) -> None:
        """A queued request finished: copy its outputs into the caller's future."""
        future, names, _ = userdata
        try:
            future.set_result([np.array(request.get_tensor(self._ports[n]).data, copy=True) for n in names])
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
            future.set_exception(exc)


def _node(port) -> Node:
    shape = [d.get_length() if d.is_static else None for d in port.get_partial_shape()]
    return Node(port.get_any_name(), shape)

"""The onnxruntime backend: sessions on the CPU (with an optimised-graph cache beside the
model), CUDA or TensorRT, and the providers each device asks for.

:class:`posecli.network.session.PoseModel` opens its onnxruntime sessions here; the OpenVINO
runtime lives in :mod:`.openvino`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import platform
from pathlib import Path

from ...errors import DeviceError, ModelError, first_line
from ...io.atomic import atomic_path
from ..store import store_dir

_PROVIDER_OF_DEVICE = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
_GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")

#: onnxruntime settings for CPU sessions. Spinning intra-op threads keep polling for work
#: between kernels; on a shared or busy machine (and beside posecli's own decode/parse
#: threads) they take CPU from the threads that have work. Measured on a loaded 2-core
#: machine: INT8 median 557 -> 400 ms per frame, float32 960 -> 841 ms.
CPU_SESSION_CONFIG = {"session.intra_op.allow_spinning": "0"}

#: Suffix of the optimized-graph cache kept beside a stored model (``NAME.int8.onnx`` ->
#: ``NAME.int8.onnx.<key>.ort``); not ``.onnx``, so the store never lists it as a model.
OPTIMIZED_SUFFIX = ".ort"


def _ort():
    from ..runtimes import import_onnxruntime

    ort = import_onnxruntime()  # telemetry off: no files in the user's home
    ort.set_default_logger_severity(4)  # onnxruntime logs provider failures on stderr otherwise
    return ort


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (native libraries write there, bypassing sys.stderr)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def open_session(path: Path, device: str, threads: int | None, cuda_usable):
    """An onnxruntime session on ``device``: (session, provider that runs it, cache path).

    CPU sessions of models in the store reuse an optimized graph cached beside the model
    (see :func:`_optimized_cache`); any problem with the cache falls back to a plain load.
    """
    ort = _ort()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # one chain of convs: nothing to overlap
    opts.log_severity_level = 4
    if threads:
        opts.intra_op_num_threads = threads
    wanted = _providers(ort, path, device, cuda_usable)
    on_cpu = wanted == ["CPUExecutionProvider"]
    if on_cpu:
        for key, value in CPU_SESSION_CONFIG.items():
            opts.add_session_config_entry(key, value)
    cache = _optimized_cache(path) if on_cpu else None
    if cache is not None:
        session = _session_from_cache(ort, path, cache, opts, wanted)
        if session is not None:
            return session, session.get_providers()[0], cache
    try:
        # GPU providers that fail to load print banners on fd 2 before posecli's one line
        with _quiet_stderr() if device in ("cuda", "tensorrt") else contextlib.nullcontext():
            session = ort.InferenceSession(str(path), sess_options=opts, providers=wanted)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        text = first_line(exc, limit=None)
        if "Protobuf" in text or "protobuf" in text or "parse" in text.lower():
            raise ModelError("not an ONNX model (cannot be parsed)", path=path) from None
        if device in ("cuda", "tensorrt") and ("CUDA" in text or "cuda" in text):
            raise DeviceError(f"device={device!r}: CUDA cannot be used ({text})", param="device") from None
        raise ModelError(f"onnxruntime cannot load the model ({text})", path=path) from None
    used = session.get_providers()[0]
    if device in ("cuda", "tensorrt") and used != _PROVIDER_OF_DEVICE[device]:
        raise DeviceError(
            f"device={device!r}: {_PROVIDER_OF_DEVICE[device]} did not load "
            "(no GPU, or CUDA/cuDNN libraries missing); use device='cpu' or device='auto'", param="device"
        )
    return session, used, None


def _providers(ort, path: Path, device: str, cuda_usable) -> list:
    """The provider chain (names, or (name, options)) for ``device``."""
    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "auto":
        return (["CUDAExecutionProvider"] if cuda_usable() else []) + ["CPUExecutionProvider"]
    provider = _PROVIDER_OF_DEVICE[device]
    if provider not in available:
        raise DeviceError(
            f"device={device!r}: onnxruntime has no {provider} "
            f"(install onnxruntime-gpu; available: {', '.join(available)})", param="device"
        )
    chain = [provider, "CUDAExecutionProvider", "CPUExecutionProvider"]
    wanted = [p for p in dict.fromkeys(chain) if p in available]
    if device == "tensorrt":
        wanted[0] = (provider, _tensorrt_options(path))
    return wanted


def _tensorrt_options(path: Path) -> dict:
    """TensorRT settings: engines (one per input shape) and timing cache kept in the store.

    FP16 kernels are allowed for every model (TensorRT picks per layer); a QDQ (int8)
    model also needs INT8 enabled, TensorRT then follows its explicit quantization.
    """
    cache = store_dir() / "trt-cache"
    cache.mkdir(parents=True, exist_ok=True)
    options = {
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(cache),
        "trt_fp16_enable": True,
    }
    if path.name.endswith(".int8.onnx"):
        options["trt_int8_enable"] = True
    return options


def _optimized_cache(path: Path) -> Path | None:
    """Where the optimized CPU graph of a stored model is cached, or None (not in the store).

    The name carries a key over what the optimized graph depends on: the source file
    (size, modification time), the onnxruntime version and this CPU (its layout
    transformations, e.g. NCHWc blocks, depend on the vector width). A changed source
    gets a new name; older caches of the same model are removed when it is written.
    """
    try:
        resolved = path.resolve()
        if resolved.parent != store_dir().resolve():
            return None
        st = resolved.stat()
    except OSError:
        return None
    onnxruntime = _ort()
    key = "|".join([str(st.st_size), str(st.st_mtime_ns), onnxruntime.__version__, cpu_signature()])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return resolved.with_name(f"{resolved.name}.{digest}{OPTIMIZED_SUFFIX}")


@functools.lru_cache(maxsize=None)
def cpu_signature() -> str:
    """The machine and its CPU's feature flags (what graph layout choices depend on)."""
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.machine()}|{platform.processor()}|{flags}"


def _session_from_cache(ort, path: Path, cache: Path, opts, providers):
    """A session from the cached optimized graph, writing the cache first if needed.

    Returns None on any failure (unwritable store, stale or damaged cache): the caller
    then loads the model itself and reports its errors.
    """
    if cache.is_file():
        fast = ort.SessionOptions()
        fast.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        fast.execution_mode = opts.execution_mode
        fast.intra_op_num_threads = opts.intra_op_num_threads
        fast.log_severity_level = 4
        for key, value in CPU_SESSION_CONFIG.items():
            fast.add_session_config_entry(key, value)
        try:
            return ort.InferenceSession(str(cache), sess_options=fast, providers=providers)
        except Exception:
            cache.unlink(missing_ok=True)  # damaged or from another build: rewrite below
    if not os.access(cache.parent, os.W_OK):
        return None
    try:
        with atomic_path(cache, keep_suffix=True) as tmp:  # onnxruntime writes the graph by its extension
            opts.optimized_model_filepath = str(tmp)
            session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception:
        return None
    finally:
        opts.optimized_model_filepath = ""
    for old in cache.parent.glob(f"{path.name}.*{OPTIMIZED_SUFFIX}"):
        if old != cache and not old.name.startswith("."):
            old.unlink(missing_ok=True)
    return session

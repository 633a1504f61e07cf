"""Loading an ONNX pose network with its metadata, choosing providers, running it.

``PoseModel.load`` resolves a model (store name or path), reads its posecli metadata
(embedded, sidecar, or guessed from a skeleton profile), opens an onnxruntime session on
the requested device, and checks input/output names and channel counts once. ``run``
takes a normalised (N, 3, H, W) float32 batch and returns the heatmaps and PAFs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DeviceError, ModelError
from ..skeleton import get_profile
from .backends import RUNTIMES
from .backends.onnxruntime import (  # noqa: F401  (CPU_SESSION_CONFIG, OPTIMIZED_SUFFIX: part of this module's API)
    _GPU_PROVIDERS,
    _PROVIDER_OF_DEVICE,
    CPU_SESSION_CONFIG,
    OPTIMIZED_SUFFIX,
    _ort,
    _quiet_stderr,
    cpu_signature,
    open_session,
)
from .metadata import METADATA_KEY, ModelInfo, guess_metadata, read_sidecar, sidecar_path
from .store import DEFAULT_MODEL, looks_like_path, model_path, resolve_model

DEVICES = ("auto", "cpu", "cuda", "tensorrt")
PRECISIONS = ("auto", "fp32", "int8", "fp16")


#: Frames per network run that a video/batch pipeline should use on each device: the CPU
#: gains nothing from batching (its kernels already fill the cores with one frame), a GPU
#: needs several frames in flight to be busy.
DEFAULT_BATCH_SIZE = {"cpu": 1, "cuda": 8, "tensorrt": 8}

# A 65-byte ONNX graph (one Identity node) used to find out whether CUDA really loads:
# onnxruntime-gpu lists the CUDA provider even on machines without a GPU or CUDA libraries.
_PROBE_MODEL = bytes.fromhex(
    "08073a370a100a017812017922084964656e746974791201705a0f0a0178120a0a08080112040a0208"
    "01620f0a0179120a0a08080112040a02080142040a00100d"
)


@functools.lru_cache(maxsize=None)
def cuda_usable() -> bool:
    """True when onnxruntime's CUDA provider actually loads on this machine (cached)."""
    ort = _ort()
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    with _quiet_stderr():  # the provider bridge reports missing CUDA libraries on fd 2
        try:
            probe = ort.InferenceSession(_PROBE_MODEL, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
        except Exception:  # a broken CUDA install raises instead of falling back
            return False
    return probe.get_providers()[0] == "CUDAExecutionProvider"


def default_batch_size(device: str = "auto") -> int:
    """Frames per network run for ``device`` (``auto``: CUDA when it loads, else the CPU)."""
    if device not in DEVICES:
        raise DeviceError(f"unknown device '{device}' (choose from {', '.join(DEVICES)})")
    if device == "auto":
        device = "cuda" if cuda_usable() else "cpu"
    return DEFAULT_BATCH_SIZE[device]


@dataclass
class PoseModel:
    """An opened pose network: its file, metadata, session and the provider that runs it.

    ``optimized``: the cached optimized graph the session was loaded from or written to
    (CPU sessions of stored models), or OpenVINO's compiled-network cache, else None.
    ``runtime``: ``onnxruntime`` or ``openvino``; ``runtime_note``: why that one.
    """

    path: Path
    info: ModelInfo
    session: object
    provider: str
    optimized: Path | None = None
    runtime: str = "onnxruntime"
    runtime_note: str = ""

    # -- loading -----------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        ref: str | Path | None = None,
        device: str = "auto",
        precision: str = "auto",
        profile: str | None = None,
        threads: int | None = None,
        runtime: str = "auto",
    ) -> "PoseModel":
        """Open a model by store name or path (``None``: the default model).

        ``device``: ``auto`` (CUDA when it actually loads, else CPU), ``cpu``, ``cuda``,
        ``tensorrt``. ``precision``: ``auto`` picks the INT8 variant of a stored model on
        the CPU when it has been imported, else float32. ``profile`` names a built-in
        skeleton for models without posecli metadata. ``runtime``: ``onnxruntime``,
        ``openvino`` (CPU only) or ``auto``: on the CPU the faster of the two as measured
        once on this machine (see :mod:`posecli.network.backends.choice`), else onnxruntime.
        """
        if device not in DEVICES:
            raise DeviceError(f"unknown device '{device}' (choose from {', '.join(DEVICES)})")
        if precision not in PRECISIONS:
            raise ModelError(f"unknown precision '{precision}' (choose from {', '.join(PRECISIONS)})")
        if runtime not in RUNTIMES:
            raise DeviceError(f"runtime='{runtime}' is unknown (choose from {', '.join(RUNTIMES)})")
        if runtime == "openvino":
            if device in ("cuda", "tensorrt"):
                raise DeviceError(f"runtime='openvino' runs on the CPU; device='{device}' needs runtime='onnxruntime'")
            device = "cpu"
        from .backends.choice import open_backend

        path = _resolve(ref, device, precision)
        on_cpu = device == "cpu" or (device == "auto" and not cuda_usable())
        opened = open_backend(path, device, threads, runtime, on_cpu, _open_session,
                              lambda p, s: _read_metadata(p, s, profile), cpu_signature())
        model = cls(path=path, info=opened.info, session=opened.session, provider=opened.provider,
                    optimized=opened.cache, runtime=opened.runtime, runtime_note=opened.note)
        model._check_io()
        return model

    # -- running -----------------------------------------------------------------------------
    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3, H, W) float32 normalised input -> heatmaps (N, C_h, h, w), PAFs (N, C_p, h, w).

        C_h and C_p are the skeleton's heatmap and PAF channel counts; h, w = H / stride,
        W / stride.
        """
        info = self.info
        names = list(dict.fromkeys([info.heatmaps.name, info.pafs.name]))
        if self.provider not in _GPU_PROVIDERS:
            results = self.session.run(names, {info.input_name: batch})
        else:
            # On a GPU, bind the input once and ask for host outputs directly: no staging
            # copies of inputs/outputs the parser does not need.
            binding = self.session.io_binding()
            binding.bind_cpu_input(info.input_name, np.ascontiguousarray(batch, dtype=np.float32))
            for name in names:
                binding.bind_output(name, "cpu")
            self.session.run_with_iobinding(binding)
            results = binding.copy_outputs_to_cpu()
        return self._split(names, results)

    def submit(self, batch: np.ndarray):
        """Start :meth:`run` on ``batch``; returns a function that waits for its result.

        On OpenVINO several submitted batches run at once (THROUGHPUT streams); on
        onnxruntime the batch runs now (its kernels already use every core).
        """
        if not hasattr(self.session, "submit"):
            result = self.run(batch)
            return lambda: result
        info = self.info
        names = list(dict.fromkeys([info.heatmaps.name, info.pafs.name]))
        pending = self.session.submit(names, {info.input_name: batch})
        return lambda: self._split(names, pending())

    @property
    def concurrent(self) -> bool:
        """True when :meth:`submit` runs several batches at once (worth keeping several in flight)."""
        return bool(getattr(self.session, "concurrent", False))

    def wait_idle(self) -> None:
        """Wait until no submitted batch is running any more (after a stream stopped early)."""
        wait = getattr(self.session, "wait_idle", None)
        if wait is not None:
            wait()

    def expect(self, shape: tuple, frames: int) -> None:
        """Say that about ``frames`` batches of input ``shape`` (N, 3, H, W) are coming (a video):
        a runtime that compiles per size may then do it before the first."""
        expect = getattr(self.session, "expect", None)
        if expect is not None:
            expect(tuple(shape), int(frames))

    def _split(self, names: list[str], results: list) -> tuple[np.ndarray, np.ndarray]:
        """The skeleton's heatmap and PAF channels out of the network's outputs."""
        info = self.info
        outs = dict(zip(names, results))
        sk = info.skeleton
        hm = outs[info.heatmaps.name][:, info.heatmaps.start : info.heatmaps.start + sk.num_heatmaps]
        paf = outs[info.pafs.name][:, info.pafs.start : info.pafs.start + sk.num_pafs]
        if hm.shape[1] != sk.num_heatmaps or paf.shape[1] != sk.num_pafs:
            raise ModelError(
                f"outputs have {hm.shape[1]} heatmap and {paf.shape[1]} PAF channels, skeleton "
                f"'{sk.name}' needs {sk.num_heatmaps} and {sk.num_pafs}",
                path=self.path,
            )
        return hm, paf

    @property
    def default_batch_size(self) -> int:
        """Frames per network run suited to the provider running this model (1 on the CPU)."""
        return DEFAULT_BATCH_SIZE.get(self.device, 1)

    @property
    def device(self) -> str:
        """``cpu``, ``cuda`` or ``tensorrt``: which provider actually runs the network."""
        if self.runtime != "onnxruntime":
            return "cpu"
        for dev, prov in _PROVIDER_OF_DEVICE.items():
            if prov == self.provider:
                return dev
        return self.provider

    def describe(self) -> dict:
        """A plain summary for ``models info`` and ``--verbose``."""
        sess = self.session
        return {
            "path": str(self.path),
            "name": self.info.name,
            "precision": self.info.precision,
            "skeleton": self.info.skeleton.name,
            "parts": self.info.skeleton.num_parts,
            "limbs": self.info.skeleton.num_limbs,
            "input": {i.name: i.shape for i in sess.get_inputs()},
            "outputs": {o.name: o.shape for o in sess.get_outputs()},
            "input_size_hw": list(self.info.size_hw),
            "stride": self.info.stride,
            "color": self.info.color,
            "runtime": self.runtime,
            "runtime_choice": self.runtime_note,
            "provider": self.provider,
            "default_batch_size": self.default_batch_size,
            "optimized_cache": str(self.optimized) if self.optimized else None,
            "license": self.info.license,
            "source": self.info.source,
            **({"openvino": sess.describe()} if self.runtime != "onnxruntime" else {}),
        }

    # -- checks ------------------------------------------------------------------------------
    def _check_io(self) -> None:
        info, sk = self.info, self.info.skeleton
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        if info.input_name not in inputs:
            raise ModelError(
                f"metadata names input '{info.input_name}', the network has {sorted(inputs)}",
                path=self.path,
            )
        shape = inputs[info.input_name].shape
        if len(shape) != 4 or shape[1] not in (3, None) and not isinstance(shape[1], str):
            raise ModelError(f"input '{info.input_name}' must be N x 3 x H x W, not {shape}", path=self.path)
        if isinstance(shape[2], int) or isinstance(shape[3], int):  # posecli sizes each image's input itself
            raise ModelError(f"input '{info.input_name}' has a fixed size {shape[2]} x {shape[3]}; posecli needs "
                             "a model with free height and width (export it with dynamic axes)", path=self.path)
        for kind, spec, need in (
            ("heatmap", info.heatmaps, sk.num_heatmaps),
            ("PAF", info.pafs, sk.num_pafs),
        ):
            if spec.name not in outputs:
                raise ModelError(
                    f"metadata names {kind} output '{spec.name}', the network has {sorted(outputs)}",
                    path=self.path,
                )
            oshape = outputs[spec.name].shape
            if len(oshape) != 4:
                raise ModelError(f"output '{spec.name}' must be N x C x H x W, not {oshape}", path=self.path)
            channels = oshape[1]
            if isinstance(channels, int) and channels < spec.start + need:
                raise ModelError(
                    f"output '{spec.name}' has {channels} channels; skeleton '{sk.name}' needs "
                    f"{need} {kind} channels from channel {spec.start}",
                    path=self.path,
                )


def _resolve(ref, device: str, precision: str) -> Path:
    """The model file, with precision ``auto`` choosing INT8 on the CPU when it exists."""
    if ref is not None and looks_like_path(str(ref)):
        return resolve_model(str(ref))
    if precision == "auto":
        name = str(ref) if ref else DEFAULT_MODEL
        on_cpu = device == "cpu" or (device == "auto" and not cuda_usable())
        # INT8 runs on the CPU's integer kernels; FP16 suits GPUs. Fall back to float32.
        for candidate in (("int8",) if on_cpu else ("fp16",)):
            if model_path(name, candidate).exists():
                return model_path(name, candidate)
        precision = "fp32"
    return resolve_model(None if ref is None else str(ref), precision)


def _open_session(path: Path, device: str, threads: int | None):
    """An onnxruntime session on ``device`` (see :func:`.backends.onnxruntime.open_session`)."""
    return open_session(path, device, threads, cuda_usable)


def _read_metadata(path: Path, session, profile: str | None) -> ModelInfo:
    """Embedded record, else sidecar JSON, else a guess from ``profile``."""
    if profile is None:
        meta = session.get_modelmeta().custom_metadata_map
        if METADATA_KEY in meta:
            return ModelInfo.from_json(meta[METADATA_KEY], origin=str(path))
        side = sidecar_path(path)
        if side.is_file():
            return read_sidecar(side)
        raise ModelError(
            "model has no posecli metadata and no sidecar "
            f"{side.name}; name its skeleton with profile='coco18' or profile='body25'",
            path=path,
        )
    skeleton = get_profile(profile)
    inp = session.get_inputs()[0]
    outputs = {o.name: list(o.shape) for o in session.get_outputs()}
    try:
        return guess_metadata(skeleton, inp.name, list(inp.shape), outputs, name=path.stem)
    except ModelError as exc:
        raise ModelError(exc.message, path=path) from None

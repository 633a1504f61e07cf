"""The training loop: network from ``init``, Adam, the OpenPose loss, checkpoints, resume.

:func:`train` runs until ``steps`` optimiser steps or ``epochs`` passes over the data
(whichever comes first; counted from the start of training, so a resumed run stops where
the original would have). It writes ``<out>/last.pt`` every ``checkpoint_every`` steps and
at the end (atomically), and calls :func:`validate` every ``validate_every`` epochs when
validation data is given.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..errors import InputError, ModelError
from ..network.metadata import DEFAULT_SIZE_HW
from ..skeleton import COCO18
from .checkpoint import load_checkpoint, network_from_checkpoint, save_checkpoint
from .dataset import AugmentConfig, CocoPoseDataset, TargetConfig, make_loader
from .loss import openpose_loss
from .network import ARCHS, LightweightOpenPose, build_network
from .weights import load_pretrained, read_weights

INITS = ("default", "scratch")


@dataclass
class TrainConfig:
    """Everything a run needs. ``input_hw``: training crop (H, W), multiples of 8.

    ``weights``: the pretrained model for ``init="default"`` (an ONNX file or an OpenVINO
    ``.xml``); None means the default model in the model store. ``arch_options``: extra
    constructor arguments of the network (e.g. ``paf_stages``, ``cm_stages``).
    """

    annotations: Path
    images: Path
    out_dir: Path = Path("runs/train")
    arch: str = "lightweight"
    init: str = "default"
    weights: str | None = None
    arch_options: dict = field(default_factory=dict)
    epochs: int | None = None
    steps: int | None = None
    batch_size: int = 8
    lr: float = 4e-5
    weight_decay: float = 0.0
    input_hw: tuple[int, int] = (256, 256)
    workers: int = 0
    seed: int = 0
    checkpoint_every: int = 100
    validate_every: int | None = None
    val_annotations: Path | None = None
    val_images: Path | None = None
    device: str = "cpu"
    threads: int | None = None
    augment: AugmentConfig = AugmentConfig()
    targets: TargetConfig = TargetConfig()


@dataclass
class TrainResult:
    """``losses``: mean loss per step over the whole run (resumed steps included)."""

    step: int
    epoch: int
    losses: list[float]
    checkpoint: Path
    validation: list[tuple[int, float | None]] = field(default_factory=list)


def initial_network(config: TrainConfig) -> tuple[torch.nn.Module, dict]:
    """The network to start from, and checkpoint metadata describing where it came from."""
    if config.arch not in ARCHS:
        raise InputError(f"unknown architecture '{config.arch}' (known: {', '.join(ARCHS)})")
    if config.init not in INITS:
        raise InputError(f"unknown init '{config.init}' (known: {', '.join(INITS)})")
    meta = {"skeleton": COCO18.to_dict(), "stride": config.targets.stride,
            "input_hw": list(config.input_hw), "pad_value": list(config.augment.pad_value),
            "export_size_hw": list(config.input_hw)}
    if config.init == "scratch":
        options = dict(config.arch_options)
        if config.arch == "lightweight":
            options.setdefault("bn", True)
        torch.manual_seed(config.seed)
        return build_network(config.arch, **options), meta
    if config.arch != "lightweight":
        raise InputError("init='default' needs arch='lightweight' (the default model's architecture)", param="arch")
    path = _default_weights(config.weights)
    net = LightweightOpenPose(**{**config.arch_options, "bn": False})
    load_pretrained(net, read_weights(path), strict=config.arch_options.get("refinement_stages", 1) == 1)
    size_hw, offset = _base_info(path)
    # The base model's keypoint offset comes with its weights (posecli's own targets have
    # none, so a long fine-tune wears it away: docs/model-format.md).
    meta.update(base_model=str(path), license="Apache-2.0", export_size_hw=list(size_hw),
                keypoint_offset=list(offset))
    return net, meta


def _default_weights(ref: str | None) -> Path:
    from ..network.store import resolve_model

    if ref and Path(ref).suffix.lower() == ".xml":
        if not Path(ref).is_file():
            raise ModelError("model file does not exist", path=ref)
        return Path(ref)
    return resolve_model(ref, "fp32")


def _base_info(path: Path) -> tuple[tuple[int, int], tuple[float, float]]:
    """The pretrained model's native input (H, W) and keypoint offset: from its own record
    (an ONNX file), else what the importer would write for it (an IR; the default model's
    native size)."""
    from ..network.importers.openvino import KEYPOINT_OFFSETS
    from ..network.metadata import METADATA_KEY, ModelInfo

    if path.suffix.lower() == ".onnx":
        import onnx

        for prop in onnx.load(str(path), load_external_data=False).metadata_props:
            if prop.key == METADATA_KEY:
                info = ModelInfo.from_json(prop.value)
                return info.size_hw, info.keypoint_offset
    return DEFAULT_SIZE_HW, KEYPOINT_OFFSETS.get(path.stem, (0.0, 0.0))


def train(
    config: TrainConfig,
    resume: str | Path | None = None,
    progress: Callable[[int, int, float, int], None] | None = None,
    on_step: Callable[[int, float], None] | None = None,
    validate_fn: Callable[[torch.nn.Module, dict], float | None] | None = None,
) -> TrainResult:
    """Train (or resume) and return the loss history and the last checkpoint's path.

    ``progress(step, total_steps, loss, epoch)`` and ``on_step(step, loss)`` are called after
    every step (the library draws no progress bar itself; the CLI passes one);
    ``validate_fn(net, meta)`` replaces :func:`validate` (tests).
    """
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(int(config.threads))
    device = torch.device(config.device)
    if resume is not None:
        state = load_checkpoint(resume)
        net = network_from_checkpoint(state)
        meta = state.get("meta", {})
        step, epoch, losses = state["step"], state["epoch"], list(state["losses"])
    else:
        net, meta = initial_network(config)
        state, step, epoch, losses = None, 0, 0, []
    net.to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if state is not None and state.get("optimizer"):
        optimizer.load_state_dict(state["optimizer"])
        for group in optimizer.param_groups:
            group["lr"] = config.lr
    meta = {**meta, "arch": net.arch, "train": _jsonable(asdict(config))}

    dataset = CocoPoseDataset(config.annotations, config.images, config.input_hw,
                              augment=config.augment, targets=config.targets)
    loader = make_loader(dataset, config.batch_size, config.workers)
    per_epoch = len(loader)
    max_steps = _total_steps(config, per_epoch)
    checkpoint = Path(config.out_dir) / "last.pt"
    validation: list[tuple[int, float | None]] = []
    validate_fn = validate_fn or (lambda n, m: validate(n, m, config))

    while step < max_steps:
        seen = 0
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            stages = net(batch["image"])
            loss, _ = openpose_loss(stages, batch["heatmaps"], batch["pafs"], batch["mask"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            seen += 1
            value = float(loss.detach())
            if not math.isfinite(value):
                raise InputError(f"the loss diverged at step {step} ({value}); try lr={config.lr / 10:g}", param="lr")
            losses.append(value)
            if progress is not None:
                progress(step, max_steps, value, epoch)
            if on_step is not None:
                on_step(step, value)
            if config.checkpoint_every and step % config.checkpoint_every == 0:
                save_checkpoint(checkpoint, net, optimizer, step=step, epoch=epoch, losses=losses, meta=meta)
            if step >= max_steps:
                break
        if seen < per_epoch:
            break  # stopped inside an epoch
        epoch += 1
        if config.validate_every and epoch % config.validate_every == 0:
            net.eval()
            validation.append((step, validate_fn(net, meta)))
            net.train()
    save_checkpoint(checkpoint, net, optimizer, step=step, epoch=epoch, losses=losses, meta=meta)
    return TrainResult(step, epoch, losses, checkpoint, validation)


def _total_steps(config: TrainConfig, per_epoch: int) -> int:
    limits = []
    if config.steps is not None:
        limits.append(int(config.steps))
    if config.epochs is not None:
        limits.append(int(config.epochs) * per_epoch)
    return min(limits) if limits else per_epoch


def _jsonable(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out[k] = _jsonable(v)
        elif isinstance(v, Path):
            out[k] = str(v)
        elif isinstance(v, tuple):
            out[k] = list(v)
        else:
            out[k] = v
    return out


def validate(net: torch.nn.Module, meta: dict, config: TrainConfig) -> float | None:
    """COCO keypoint AP of ``net`` on the validation set, through ``posecli eval``'s code.

    The network is exported to a temporary ONNX model and evaluated exactly like a user's
    model. Returns None when no validation data is configured or the evaluation module is
    not available.
    """
    if config.val_annotations is None:
        return None
    from .validation import evaluate_network

    return evaluate_network(net, meta, config.val_annotations, config.val_images or config.images)

"""Training checkpoints: one ``torch.save`` file, written atomically (temp file, rename).

A checkpoint holds what resuming and exporting need::

    {"format": 1, "arch": "lightweight", "config": {...network kwargs...},
     "state_dict": ..., "optimizer": ... | None, "step": int, "epoch": int,
     "losses": [float, ...],            # mean loss per step so far
     "meta": {"skeleton": {...}, "input_hw": [h, w], "stride": 8,
              "pad_value": [...], "base_model": str, "export_size_hw": [h, w], ...}}
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ModelError
from ..io.atomic import atomic_path
from .network import build_network

FORMAT = 1


def save_checkpoint(path: str | Path, net: torch.nn.Module, optimizer=None, *, step: int = 0,
                    epoch: int = 0, losses: list[float] | None = None, meta: dict | None = None) -> Path:
    """Write a checkpoint atomically; returns its path."""
    path = Path(path)
    state = {
        "format": FORMAT,
        "arch": net.arch,
        "config": dict(net.config),
        "state_dict": net.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": int(step),
        "epoch": int(epoch),
        "losses": list(losses or []),
        "meta": dict(meta or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint (on the CPU); :class:`ModelError` when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise ModelError("checkpoint does not exist", path=path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # pickle/zip errors of every kind
        raise ModelError(f"not a posecli checkpoint ({type(exc).__name__})", path=path) from None
    if not isinstance(state, dict) or "state_dict" not in state or "arch" not in state:
        raise ModelError("not a posecli checkpoint", path=path)
    if int(state.get("format", FORMAT)) > FORMAT:
        raise ModelError(f"checkpoint format {state['format']} is newer than this posecli", path=path)
    return state


def network_from_checkpoint(state: dict) -> torch.nn.Module:
    """The network a checkpoint describes, with its weights."""
    try:
        net = build_network(state["arch"], **state["config"])
        net.load_state_dict(state["state_dict"])
    except (ValueError, TypeError, RuntimeError) as exc:
        raise ModelError(f"checkpoint does not match its network ({str(exc).splitlines()[0]})") from None
    return net

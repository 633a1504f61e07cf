"""The model metadata record: everything posecli needs to know about an ONNX model.

The record is a small JSON object. It lives in the ONNX file's ``metadata_props`` under the
key ``posecli`` (models made by ``posecli models import`` and ``posecli export``), or in a
sidecar file ``<model>.json`` next to a model made elsewhere. A model with neither can
still be run by naming a built-in skeleton profile (``--profile coco18``); the rest is then
guessed from the session (see :func:`guess_metadata`). The format is documented in
``docs/model-format.md``.

Example (the default model)::

    {
      "format": 1,
      "name": "human-pose-estimation-0001",
      "skeleton": "coco18",                 # a profile name, or a full skeleton record
      "input": {"name": "data", "size_hw": [256, 456], "color": "bgr",
                "mean": [0, 0, 0], "scale": [1, 1, 1], "pad_value": [0, 0, 0]},
      "outputs": {"heatmaps": {"name": "Mconv7_stage2_L2", "start": 0},
                  "pafs": {"name": "Mconv7_stage2_L1", "start": 0}},
      "stride": 8,
      "keypoint_offset": [0.0, 0.32],
      "precision": "fp32",
      "source": "...", "license": "Apache-2.0"
    }

The network sees ``(pixel - mean) * scale`` per channel, in the colour order ``color``;
padding added by the preprocessing uses ``pad_value`` (in pixel units, before
normalisation). ``start`` is the first channel of the maps in that output, for networks
that concatenate heatmaps and PAFs into a single output. ``keypoint_offset`` (x, y, network
input pixels, default 0, 0) is added to every part the parser decodes: where the annotations
the network was trained on put a part against where the network's peak ends up (the default
model's training recipe leaves its peaks about a third of a pixel above: see
docs/model-format.md).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import ModelError, first_line
from ..skeleton import Skeleton, get_profile

METADATA_KEY = "posecli"
FORMAT_VERSION = 1
#: The default model's native input (height, width): the size assumed for a model of that
#: family whose graph and metadata do not say.
DEFAULT_SIZE_HW = (256, 456)
#: Input pixels per map cell of OpenPose-style networks, assumed where a model does not say.
DEFAULT_STRIDE = 8
MAX_STRIDE = 64
MAX_INPUT_SIDE = 8192
MAX_METADATA_CHARS = 1_000_000  # a record with a skeleton of a few hundred parts is a few KB
MAX_SIDECAR_BYTES = 1 << 20  # a record is a few KB; anything this large is not one


@dataclass(frozen=True)
class OutputSpec:
    """Where one kind of map lives: the output's name and its first channel."""

    name: str
    start: int = 0


@dataclass(frozen=True)
class ModelInfo:
    """Parsed metadata of one model (see the module docstring for the JSON form).

    ``size_hw`` is the network's native input (height, width); ``stride`` the ratio of
    input pixels to map cells.
    """

    name: str
    skeleton: Skeleton
    input_name: str
    size_hw: tuple[int, int]
    heatmaps: OutputSpec
    pafs: OutputSpec
    stride: int = 8
    color: str = "bgr"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    pad_value: tuple[float, float, float] = (0.0, 0.0, 0.0)
    precision: str = "fp32"
    source: str = ""
    license: str = ""
    keypoint_offset: tuple[float, float] = (0.0, 0.0)
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.color not in ("bgr", "rgb"):
            raise ModelError(f"metadata: color must be 'bgr' or 'rgb', not '{self.color}'")
        if not 1 <= self.stride <= MAX_STRIDE:
            raise ModelError(f"metadata: stride must be from 1 to {MAX_STRIDE}, not {self.stride}")
        if len(self.size_hw) != 2 or min(self.size_hw) < self.stride or max(self.size_hw) > MAX_INPUT_SIDE:
            raise ModelError(f"metadata: input size_hw must be two sizes from the stride to {MAX_INPUT_SIDE}, "
                             f"not {list(self.size_hw)}")
        for what in ("mean", "scale", "pad_value"):
            if not all(math.isfinite(v) for v in getattr(self, what)):
                raise ModelError(f"metadata: input {what} must be finite numbers")
        for what, name in (("input", self.input_name), ("heatmaps output", self.heatmaps.name),
                           ("pafs output", self.pafs.name)):
            if not name:
                raise ModelError(f"metadata: the {what} needs a name")
        if self.heatmaps.start < 0 or self.pafs.start < 0:
            raise ModelError("metadata: an output's start channel must be >= 0")
        if len(self.keypoint_offset) != 2 or not all(
                math.isfinite(v) and abs(v) <= self.stride for v in self.keypoint_offset):
            raise ModelError(f"metadata: keypoint_offset must be two numbers within the stride ({self.stride}) "
                             f"of 0, not {list(self.keypoint_offset)}")

    # -- JSON ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        from ..skeleton import PROFILES

        builtin = PROFILES.get(self.skeleton.name)
        skeleton = self.skeleton.name if builtin == self.skeleton else self.skeleton.to_dict()
        d = {
            "format": FORMAT_VERSION,
            "name": self.name,
            "skeleton": skeleton,
            "input": {
                "name": self.input_name,
                "size_hw": list(self.size_hw),
                "color": self.color,
                "mean": list(self.mean),
                "scale": list(self.scale),
                "pad_value": list(self.pad_value),
            },
            "outputs": {
                "heatmaps": {"name": self.heatmaps.name, "start": self.heatmaps.start},
                "pafs": {"name": self.pafs.name, "start": self.pafs.start},
            },
            "stride": self.stride,
            "keypoint_offset": list(self.keypoint_offset),
            "precision": self.precision,
            "source": self.source,
            "license": self.license,
        }
        d.update(self.extra)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, d: dict, origin: str = "metadata") -> ModelInfo:
        """Parse a metadata record; :class:`ModelError` names ``origin`` when it is malformed."""
        try:
            if int(d.get("format", FORMAT_VERSION)) > FORMAT_VERSION:
                raise ModelError(
                    f"{origin}: metadata format {d['format']} is newer than this posecli "
                    f"understands ({FORMAT_VERSION}); upgrade posecli"
                )
            sk = d["skeleton"]
            skeleton = get_profile(sk) if isinstance(sk, str) else Skeleton.from_dict(sk)
            inp = d["input"]
            outs = d["outputs"]
            known = {"format", "name", "skeleton", "input", "outputs", "stride", "precision",
                     "source", "license", "keypoint_offset"}
            offset = d.get("keypoint_offset", (0.0, 0.0))
            return cls(
                name=str(d.get("name", "model")),
                skeleton=skeleton,
                input_name=str(inp["name"]),
                size_hw=(int(inp["size_hw"][0]), int(inp["size_hw"][1])),
                heatmaps=_output_spec(outs["heatmaps"]),
                pafs=_output_spec(outs["pafs"]),
                stride=int(d.get("stride", 8)),
                color=str(inp.get("color", "bgr")).lower(),
                mean=_triple(inp.get("mean", 0.0)),
                scale=_triple(inp.get("scale", 1.0)),
                pad_value=_triple(inp.get("pad_value", 0.0)),
                precision=str(d.get("precision", "fp32")),
                source=str(d.get("source", "")),
                license=str(d.get("license", "")),
                keypoint_offset=_offset(offset),
                extra={k: v for k, v in d.items() if k not in known},
            )
        except ModelError:
            raise
        except KeyError as exc:
            raise ModelError(f"{origin}: posecli metadata lacks the field '{exc.args[0]}'") from None
        except (TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
            raise ModelError(f"{origin}: malformed posecli metadata ({first_line(exc, limit=100)})") from None

    @classmethod
    def from_json(cls, text: str, origin: str = "metadata") -> ModelInfo:
        if len(text) > MAX_METADATA_CHARS:
            raise ModelError(f"{origin}: posecli metadata of {len(text)} characters (at most {MAX_METADATA_CHARS})")
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"{origin}: metadata is not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise ModelError(f"{origin}: metadata is not valid JSON (nested too deeply)") from None
        except ValueError as exc:  # a number of thousands of digits (Python's int-string limit)
            raise ModelError(f"{origin}: malformed posecli metadata ({first_line(exc, limit=100)})") from None
        if not isinstance(d, dict):
            raise ModelError(f"{origin}: metadata must be a JSON object")
        return cls.from_dict(d, origin)

    def with_changes(self, **changes) -> ModelInfo:
        return replace(self, **changes)


def _offset(value) -> tuple[float, ...]:
    """``keypoint_offset`` as numbers (checked against the stride in :class:`ModelInfo`)."""
    if not isinstance(value, (list, tuple)) or any(isinstance(v, bool) for v in value):
        raise ModelError(f"metadata: keypoint_offset must be two numbers [x, y], not {json.dumps(value)[:40]}")
    return tuple(float(v) for v in value)


def _output_spec(value) -> OutputSpec:
    if isinstance(value, str):
        return OutputSpec(value, 0)
    return OutputSpec(str(value["name"]), int(value.get("start", 0)))


def _triple(value) -> tuple[float, float, float]:
    if isinstance(value, (int, float)):
        return (float(value),) * 3
    vals = tuple(float(v) for v in value)
    if len(vals) == 1:
        return vals * 3
    if len(vals) != 3:
        raise ValueError(f"expected 1 or 3 numbers, got {len(vals)}")
    return vals  # type: ignore[return-value]


def read_sidecar(path: str | Path) -> ModelInfo:
    """The metadata record in a sidecar file; :class:`ModelError` naming the file when it is
    not one (too large, not UTF-8, not JSON, malformed)."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_SIDECAR_BYTES + 1)
    except OSError as exc:
        raise ModelError(f"cannot read metadata ({exc.strerror})", path=p) from None
    if len(data) > MAX_SIDECAR_BYTES:
        raise ModelError(f"metadata file is over {MAX_SIDECAR_BYTES // 1024} KB; not a posecli record", path=p)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelError("metadata is not UTF-8 text (not a posecli JSON record)", path=p) from None
    try:
        return ModelInfo.from_json(text)
    except ModelError as exc:
        raise ModelError(exc.message.removeprefix("metadata: "), path=p) from None


def sidecar_path(model_path: str | Path) -> Path:
    """``model.onnx`` -> ``model.json``: where a sidecar record for a model lives."""
    return Path(model_path).with_suffix(".json")


def embed_metadata(model_proto, info: ModelInfo) -> None:
    """Store ``info`` in an ``onnx.ModelProto``'s metadata_props (replacing an older record)."""
    props = model_proto.metadata_props
    for i in reversed(range(len(props))):
        if props[i].key == METADATA_KEY:
            del props[i]
    entry = props.add()
    entry.key = METADATA_KEY
    entry.value = info.to_json()


def profile_for_outputs(outputs: dict[str, list]) -> Skeleton | None:
    """The built-in skeleton whose heatmap and PAF channel counts ``outputs`` have, else None.

    ``outputs`` maps names to (N, C, H, W) shapes; heatmaps and PAFs may be two outputs or
    one output holding both (as :func:`guess_metadata` reads them).
    """
    from ..skeleton import PROFILES

    channels = {v[1] for v in outputs.values() if len(v) == 4 and isinstance(v[1], int)}
    for profile in PROFILES.values():
        n_hm, n_paf = profile.num_heatmaps, profile.num_pafs
        if {n_hm, n_paf} <= channels or n_hm + n_paf in channels:
            return profile
    return None


def guess_metadata(
    profile: Skeleton,
    input_name: str,
    input_shape: list,
    outputs: dict[str, list],
    name: str = "model",
) -> ModelInfo:
    """Metadata for a model that has none, from a skeleton profile and the session's I/O.

    ``outputs`` maps output names to shapes (N, C, H, W; dims may be None or strings).
    Heatmaps and PAFs are told apart by their channel counts; a single output holding both
    is taken as heatmaps first, then PAFs (OpenPose's layout). Normalisation is CMU
    OpenPose's: BGR, ``(pixel - 128) / 256``.
    """
    n_hm, n_paf = profile.num_heatmaps, profile.num_pafs
    channels = {k: (v[1] if len(v) == 4 else None) for k, v in outputs.items()}
    hm = [k for k, c in channels.items() if c == n_hm]
    paf = [k for k, c in channels.items() if c == n_paf]
    both = [k for k, c in channels.items() if c == n_hm + n_paf]
    if hm and paf:
        heatmaps, pafs = OutputSpec(hm[-1]), OutputSpec(paf[-1])
    elif both:
        heatmaps, pafs = OutputSpec(both[-1], 0), OutputSpec(both[-1], n_hm)
    else:
        shown = ", ".join(f"{k} {v}" for k, v in outputs.items())
        raise ModelError(
            f"outputs ({shown}) do not match skeleton '{profile.name}' "
            f"({n_hm} heatmap and {n_paf} PAF channels)"
        )
    h = input_shape[2] if len(input_shape) == 4 and isinstance(input_shape[2], int) else 368
    w = input_shape[3] if len(input_shape) == 4 and isinstance(input_shape[3], int) else 656
    return ModelInfo(
        name=name,
        skeleton=profile,
        input_name=input_name,
        size_hw=(h, w),
        heatmaps=heatmaps,
        pafs=pafs,
        stride=8,
        color="bgr",
        mean=(128.0, 128.0, 128.0),
        scale=(1 / 256, 1 / 256, 1 / 256),
        pad_value=(128.0, 128.0, 128.0),
    )

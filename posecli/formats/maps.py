"""The network's maps saved per image or video frame (``--write-maps DIR``) and read back.

One ``.npz`` file (NumPy's zip of arrays, uncompressed, no pickles) per image
(``<image>.npz``) or video frame (``<video>_<12-digit frame>.npz``), holding:

``heatmaps`` (C_h, h, w) and ``pafs`` (C_p, h, w)
    float16, after the scale and flip fusion, on the map grid of the base scale (what the
    parser reads). Channel layout: the skeleton's (``parts``, then a background channel
    when the model has one; ``paf_channels[l]`` = x, y channels of limb ``l``).
``stride``, ``image_wh``, ``resized_wh``, ``input_wh``
    the letterbox: the image (``image_wh``) was resized to ``resized_wh`` and padded
    right/bottom to the network input ``input_wh``; a map cell is ``stride`` input pixels.
``cell_to_image``
    (2, 3) float64 affine from map cell (column u, row v) to image pixels (x, y), centre
    convention of :mod:`posecli.maps`: ``[x, y] = A @ [u, v, 1]``.
``parts``, ``limbs``, ``paf_channels``, ``version``
    the skeleton's layout and this format's version (1).

:func:`read_maps` returns a :class:`~posecli.maps.Maps` that the parser takes
back (``estimator.parse(read_maps(path))``) and that maps cells to pixels
(:meth:`Maps.cells_to_image`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError
from ..io.atomic import atomic_path
from ..io.npzfile import read_npz
from ..io.paths import check_file
from ..io.urls import url_stem
from ..maps import Letterbox, Maps, base_letterbox
from ..types import Frame

MAPS_VERSION = 1
# --write-maps warns when a video would get more than this many bytes of maps per minute.
MAPS_WARN_BYTES_PER_MINUTE = 1_000_000_000
#: Read limits: the most bytes a heatmaps or PAFs array may declare (a 4000-pixel-tall input
#: with BODY-25's 78 channels in float16 is under 100 MB), the largest stride and image side.
MAX_MAPS_BYTES = 512 * 2**20
MAX_STRIDE = 256
MAX_SIDE = 2**20
_SMALL_BYTES = 64  # a scalar or a pair of int64


def maps_filename(source: str | Path, index: int | None = None, name: str | None = None) -> str:
    """``<image>.npz``, or ``<video>_<12-digit frame>.npz`` (a stream: its host, port and path,
    never its credentials); ``name`` replaces the source's stem (the distinct name of
    :func:`posecli.io.outputs.unique_names` when several inputs share a stem)."""
    text = str(source)
    stem = name if name is not None else url_stem(text) if "://" in text else Path(text).stem
    return f"{stem}.npz" if index is None else f"{stem}_{index:012d}.npz"


def write_maps(path: str | Path, maps: Maps, skeleton) -> Path:
    """Save ``maps`` (float16) with their letterbox and the skeleton layout, atomically."""
    path = Path(path)
    arrays = {
        "version": np.array(MAPS_VERSION),
        "heatmaps": maps.heatmaps.astype(np.float16),
        "pafs": maps.pafs.astype(np.float16),
        "stride": np.array(int(maps.stride)),
        "image_wh": np.array(maps.box.image_wh, dtype=np.int64),
        "resized_wh": np.array(maps.box.resized_wh, dtype=np.int64),
        "input_wh": np.array(maps.box.input_wh, dtype=np.int64),
        "cell_to_image": maps.cell_to_image_affine(),
        "parts": np.array(skeleton.parts, dtype=str),
        "limbs": np.array(skeleton.limbs, dtype=np.int64).reshape(-1, 2),
        "paf_channels": np.array(skeleton.paf_channels, dtype=np.int64).reshape(-1, 2),
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: savez adds ".npz" to names
        np.savez(f, **arrays)
    return path


def read_maps(path: str | Path) -> Maps:
    """The maps saved by ``--write-maps`` as float32 :class:`Maps` (letterbox and stride
    included); :class:`InputError` naming the file for one that is not such a file, or
    whose arrays declare more than :data:`MAX_MAPS_BYTES` (checked before loading), or whose
    stride, sizes and map grid do not fit together (checked here, not later in the parser)."""
    p = check_file(path)
    small = {k: _SMALL_BYTES for k in ("version", "stride", "image_wh", "resized_wh", "input_wh")}
    data = read_npz(p, {**small, "heatmaps": MAX_MAPS_BYTES, "pafs": MAX_MAPS_BYTES}, what="posecli maps file")
    version = _whole(data["version"], (), p, "version")[()]
    if version != MAPS_VERSION:
        raise InputError(f"maps format version {version}, this posecli reads {MAPS_VERSION}", path=p)
    heat, pafs = data["heatmaps"], data["pafs"]
    stride = int(_whole(data["stride"], (), p, "stride", 1, MAX_STRIDE))
    box = Letterbox(*(tuple(int(v) for v in _whole(data[k], (2,), p, k, 1, MAX_SIDE))
                      for k in ("image_wh", "resized_wh", "input_wh")))
    grid_hw = (box.input_wh[1] // stride, box.input_wh[0] // stride)
    if (heat.ndim != 3 or pafs.ndim != 3 or heat.shape[1:] != pafs.shape[1:] or heat.shape[1:] != grid_hw
            or heat.dtype.kind != "f" or pafs.dtype.kind != "f" or box.resized_wh[0] > box.input_wh[0]
            or box.resized_wh[1] > box.input_wh[1]):
        raise InputError(f"inconsistent maps: heatmaps {heat.shape} {heat.dtype}, pafs {pafs.shape} {pafs.dtype}, "
                         f"stride {stride}, letterbox {box}", path=p)
    return Maps(heat.astype(np.float32), pafs.astype(np.float32), box, stride)


def _whole(a: np.ndarray, shape: tuple, path: Path, name: str, low: int = 0, high: int = 2**31) -> np.ndarray:
    """``a`` when it is an integer array of ``shape`` with values in [low, high]."""
    if a.shape != shape or a.dtype.kind not in "iu" or (a.size and (a.min() < low or a.max() > high)):
        raise InputError(f"'{name}' is {a.dtype} {a.shape} {a.tolist()!s:.60}: expected integers of shape {shape} "
                         f"in [{low}, {high}]", path=path)
    return a


def maps_bytes_per_frame(estimator, image_wh: tuple[int, int]) -> int:
    """About how many bytes one frame of ``image_wh`` takes in a maps file."""
    info = estimator.model.info
    box = base_letterbox((image_wh[1], image_wh[0]), estimator.height, info.stride)
    cells = (box.input_wh[0] // info.stride) * (box.input_wh[1] // info.stride)
    sk = info.skeleton
    channels = sk.num_parts + int(sk.background) + 2 * len(sk.limbs)
    return cells * channels * 2 + 4096  # float16, and the small arrays and zip headers


class MapsWriter:
    """Writes ``frame.extra["maps"]`` of each frame into ``folder`` (the estimator must have
    been made with ``keep_maps=True``); the maps are then dropped from the frame."""

    def __init__(self, folder: str | Path, skeleton):
        self.folder = Path(folder)
        self.skeleton = skeleton
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create folder ({exc.strerror})", path=self.folder) from None
        self.count = 0

    def add(self, frame: Frame, name: str | None = None) -> Path:
        """Write ``frame``'s maps as ``<name or stem>[_<frame>].npz`` (see :func:`maps_filename`)."""
        maps = frame.extra.pop("maps", None)
        if maps is None:
            raise OutputError("no maps to write: make the estimator with keep_maps=True", path=self.folder)
        path = write_maps(self.folder / maps_filename(frame.source, frame.index, name), maps, self.skeleton)
        self.count += 1
        return path

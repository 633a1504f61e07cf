"""Named speed/accuracy settings: a small ladder of network height, scales, flip and zoom-in.

Each mode is one documented combination; explicit settings (``height=``, ``scales=``,
``flip=``, ``zoom=``) override the mode's. The figures behind the choices (COCO keypoint
AP, AP75 and AP at OKS 0.9 on the shared COCO sets, train80 split in two halves to choose
on one and confirm on the other, and images per second on a 2-core CPU) are in
docs/accuracy.md (``python -m bench eval_modes``).

======== ====== ======== ===== ======= ==========================================
mode     height scales   flip  zoom-in for
======== ====== ======== ===== ======= ==========================================
fastest  model  1        no    no      video on an ordinary CPU, live sources: the
                                       network on whole frames only now and then
fast     model  1        no    no      video: real time on a CPU (``posecli video``)
balanced model  1        no    yes     folders of photos and videos (``posecli batch``)
accurate model  1, 1.5   no    yes     photos (``posecli image``, ``posecli eval``)
======== ====== ======== ===== ======= ==========================================

"model" is the model's own input height (256 for the default model). The first pass stays
at that height in every mode: a global upscale helps small people but hurts large,
overlapping ones, and the zoom-in pass gives small people their resolution instead.
``accurate`` averages the first pass's maps with those of the photo at 1.5 times that
height (the maps of both scales on the first pass's grid): the upscaled view sharpens the
people of middle size that the zoom-in pass leaves alone, and the base view keeps large,
overlapping people. The mirrored image (``flip``) is in no mode: its gain on the shared sets
is within their noise (-0.005 to +0.02 AP) and on a held-out set of occluded people it cost
0.059 AP; it stays available as an explicit setting.

Every mode parses with the same settings. ``accurate`` kept heatmap peaks down to 0.05 for
a while (averaging two scales halves the peak of a part only one of them sees well); on the
mean over five network heights 0.1 did better on both halves of train80 and on crowded
photos (docs/accuracy.md, choice 3), so it parses as the others do.

``fastest`` is ``fast`` on single images; in a video (:mod:`posecli.video.sparse`) the
network sees the whole frame only every few frames, at a scene cut or when a person is
lost, and people are carried between by the optical flow of their keypoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputError


@dataclass(frozen=True)
class Mode:
    """One rung of the ladder. ``height`` None: the model's own input height."""

    name: str
    height: int | None
    scales: tuple[float, ...]
    flip: bool
    zoom: bool
    summary: str
    sparse: bool = False  # video: whole-frame network passes only now and then


MODES: dict[str, Mode] = {
    "fastest": Mode("fastest", None, (1.0,), False, False,
                    "video: fast on a whole frame every few frames, people carried by optical flow between",
                    sparse=True),
    "fast": Mode("fast", None, (1.0,), False, False,
                 "one pass at the model's height (real time on a CPU)"),
    "balanced": Mode("balanced", None, (1.0,), False, True,
                     "plus the zoom-in pass for small people (one more batched network run)"),
    "accurate": Mode("accurate", None, (1.0, 1.5), False, True,
                     "plus a first pass at 1.5 times the height, averaged in (about twice balanced's time)"),
}

#: The library's default (the CLI's commands pick their own: see ``posecli <command> --help``).
DEFAULT_MODE = "fast"


def get_mode(name: str | Mode | None) -> Mode:
    """A mode by name (None: :data:`DEFAULT_MODE`); :class:`InputError` for an unknown one."""
    if isinstance(name, Mode):
        return name
    key = DEFAULT_MODE if name is None else str(name).lower()
    try:
        return MODES[key]
    except KeyError:
        raise InputError(f"mode={name!r}: unknown (known: {', '.join(MODES)})") from None


def resolve(
    mode: str | Mode | None,
    *,
    height: int | None = None,
    scales: Sequence[float] | None = None,
    flip: bool | None = None,
    zoom=None,
) -> dict:
    """``height``, ``scales``, ``flip``, ``zoom`` of ``mode`` with the explicit ones (not None) winning."""
    m = get_mode(mode)
    return {
        "height": m.height if height is None else height,
        "scales": m.scales if scales is None else tuple(scales),
        "flip": m.flip if flip is None else bool(flip),
        "zoom": m.zoom if zoom is None else zoom,
    }

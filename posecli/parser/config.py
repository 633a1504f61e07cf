"""Every threshold of the parser, named, in one frozen :class:`ParserConfig`, plus presets.

Units: distances are in network-input pixels unless a field says "analysis pixels". The
*analysis grid* is the heatmap grid upsampled by ``upsample`` (1: the network's output
grid; ``"stride"``: network-input resolution), on which peaks are searched.

Presets (``PRESETS`` / :func:`get_preset`); the defaults of the fields are the ``default``
preset, the other presets change only what the table below names:

================  ===========  ===========  ===========  ===========
field             default      lightweight  openpose     cmu-python
================  ===========  ===========  ===========  ===========
upsample          1            4            "stride"     "stride"
upsample_pafs     False        True         True         True
smooth_sigma      3.0          0            0            3.0
peak_threshold    0.1          0.1          0.05         0.1
nms_radius        1            6            1            1
nms_connectivity  8            8            8            4
refine            "log_quadr." "none"       "centroid"   "none"
paf_samples       10           10           0 (adapt.)   10
paf_sampling      "bilinear"   "nearest"    "nearest"    "nearest"
paf_include_end   True         True         False        True
paf_score         "mean"       "mean_above" "mean_above" "mean"
min_above_fraction 0.8         0.8          0.95         0.8
length_prior      0.5          0            0            0.5
min_limb_score    0.0          0.0          1e-6         0.0
matching          "optimal"    "greedy"     "greedy"     "greedy"
min_parts         4            3            3            4
min_score         0.4          0.2          0.4          0.4
================  ===========  ===========  ===========  ===========
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields, replace

from ..errors import ConfigError, ParserError

_REFINE = ("none", "centroid", "log_quadratic", "log_hessian")
_SAMPLING = ("nearest", "bilinear")
_PAF_SCORE = ("mean", "mean_above")
_MATCHING = ("optimal", "greedy")
_MAX_UPSAMPLE = 16
# Ranges of the numeric fields: wide enough for any sensible tuning, narrow enough that no
# value makes the parser allocate without bound (samples, radii, peaks, smoothing kernels).
_BOUNDS: dict[str, tuple[float, float]] = {
    "smooth_sigma": (0.0, 50.0),
    "nms_radius": (1, 64),
    "refine_radius": (1, 64),
    "max_peaks": (1, 10_000),
    "paf_samples": (0, 1_000),
    "paf_samples_min": (1, 1_000),
    "paf_samples_max": (1, 1_000),
    "paf_samples_gain": (1e-3, 1e4),
    "min_above_fraction": (0.0, 1.0),
    "length_prior": (0.0, 100.0),
    "min_parts": (0, 1_000),
    "peak_offset_x": (-64.0, 64.0),
    "peak_offset_y": (-64.0, 64.0),
}


@dataclass(frozen=True)
class ParserConfig:
    """All parser thresholds (defaults: the ``default`` preset)."""

    # -- peaks (peaks.py) ---------------------------------------------------------------------
    #: Analysis grid: heatmaps upsampled by this integer factor (cubic) before the peak
    #: search; ``"stride"`` upsamples to network-input resolution (x stride); 1 keeps the
    #: network's grid (cheap; sub-pixel refinement then does the localisation).
    upsample: int | str = 1
    #: Sample PAFs from maps upsampled like the heatmaps (the references' way, costly) rather
    #: than from the raw PAF maps.
    upsample_pafs: bool = False
    #: Gaussian smoothing of the heatmaps before the peak test, sigma in input pixels
    #: (0: off). Peak scores are always read from the unsmoothed map.
    smooth_sigma: float = 3.0
    #: A peak's (smoothed) heatmap value must exceed this.
    peak_threshold: float = 0.1
    #: A peak is the maximum of the analysis pixels within this radius (analysis pixels;
    #: plateaus keep one pixel). 1 with ``nms_connectivity`` 8 is the 3x3 neighbourhood.
    nms_radius: int = 1
    #: 4 (cross) or 8 (square) neighbourhood when ``nms_radius`` is 1; a disc otherwise.
    nms_connectivity: int = 8
    #: Sub-pixel refinement: "none"; "centroid" (value-weighted mean of the positive pixels
    #: within ``refine_radius``, OpenPose's); "log_quadratic" (parabola through the log of
    #: the peak and its neighbours per axis: exact for axis-aligned Gaussian peaks);
    #: "log_hessian" (2-D Newton step on the log of the 3x3 neighbourhood with the mixed
    #: derivative, as in DARK: exact for tilted, elongated Gaussians too).
    refine: str = "log_quadratic"
    #: Half window of the "centroid" refinement (analysis pixels; 3 = OpenPose's 7x7).
    refine_radius: int = 3
    #: At most this many peaks per part, the strongest (OpenPose's POSE_MAX_PEOPLE).
    max_peaks: int = 127
    #: Added to every peak after refinement, input pixels of the maps parsed: where the
    #: network puts a part against where its training labels put it (the model's
    #: ``keypoint_offset``, which the estimator passes in for the default preset).
    peak_offset_x: float = 0.0
    peak_offset_y: float = 0.0

    # -- limb scoring (limbs.py) -----------------------------------------------------------------
    #: Samples along each candidate limb; 0 = adaptive like OpenPose:
    #: clip(round(sqrt(paf_samples_gain * max(|dx|, |dy|))), min, max), dx, dy in input px.
    paf_samples: int = 10
    paf_samples_min: int = 5
    paf_samples_max: int = 25
    paf_samples_gain: float = 5.0
    #: "bilinear" or "nearest" reading of the PAF at each sample point.
    paf_sampling: str = "bilinear"
    #: Samples span [a, b] (True: numpy linspace, Lightweight/pytorch-openpose) or [a, b)
    #: (False: OpenPose C++).
    paf_include_end: bool = True
    #: A sample counts as "above" when its PAF . unit(b - a) exceeds this.
    paf_threshold: float = 0.05
    #: A candidate limb needs strictly more than this fraction of its samples above.
    min_above_fraction: float = 0.8
    #: Limb score: "mean" of all samples' dot products, or "mean_above" (mean of those
    #: above ``paf_threshold``, OpenPose and Lightweight).
    paf_score: str = "mean"
    #: Length prior added to the limb score: min(length_prior * H / length - 1, 0), H the
    #: network-input height in pixels (pytorch-openpose's; penalises limbs longer than
    #: length_prior * H). 0 disables it.
    length_prior: float = 0.5
    #: A candidate limb needs a score (prior included) strictly above this.
    min_limb_score: float = 0.0
    #: Matching of each limb's candidate pairs: "optimal" (largest total score, the
    #: Hungarian algorithm, as the OpenPose paper has it) or "greedy" (strongest pair first,
    #: the reference implementations'); see parser/matching.py.
    matching: str = "optimal"

    # -- assembly (assemble.py) ------------------------------------------------------------------
    #: Limbs that close a cycle of the skeleton (shoulder-ear) may start new people.
    redundant_new_people: bool = False
    #: People with fewer parts are dropped.
    min_parts: int = 4
    #: People whose score (sum of part and limb scores / number of parts) is below are dropped.
    min_score: float = 0.4

    def __post_init__(self) -> None:
        for f in fields(self):  # types first: a NaN, a string or a bool where a number goes
            value, default = getattr(self, f.name), f.default
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ConfigError(f"{f.name} must be true or false, got {value!r}")
            elif isinstance(default, float):
                if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                    raise ConfigError(f"{f.name} must be a finite number, got {value!r}")
            elif isinstance(default, int) and f.name != "upsample" and (
                    isinstance(value, bool) or not isinstance(value, numbers.Integral)):
                raise ConfigError(f"{f.name} must be an integer, got {value!r}")
            low, high = _BOUNDS.get(f.name, (None, None))
            if low is not None and not isinstance(value, str) and not low <= value <= high:
                raise ConfigError(f"{f.name} must be between {low} and {high}, got {value!r}")
        up = self.upsample
        if not (up == "stride" or (isinstance(up, int) and not isinstance(up, bool) and 1 <= up <= _MAX_UPSAMPLE)):
            raise ConfigError(f"upsample must be an integer from 1 to {_MAX_UPSAMPLE} or 'stride', got {up!r}")
        if self.refine not in _REFINE:
            raise ConfigError(f"refine must be one of {_REFINE}, got {self.refine!r}")
        if self.paf_sampling not in _SAMPLING:
            raise ConfigError(f"paf_sampling must be one of {_SAMPLING}, got {self.paf_sampling!r}")
        if self.paf_score not in _PAF_SCORE:
            raise ConfigError(f"paf_score must be one of {_PAF_SCORE}, got {self.paf_score!r}")
        if self.matching not in _MATCHING:
            raise ConfigError(f"matching must be one of {_MATCHING}, got {self.matching!r}")
        if self.nms_connectivity not in (4, 8):
            raise ConfigError(f"nms_connectivity must be 4 or 8, got {self.nms_connectivity!r}")
        if not self.paf_samples_min <= self.paf_samples_max:
            raise ConfigError("paf_samples_min must be <= paf_samples_max")
        if not 0 <= self.min_above_fraction < 1:
            raise ConfigError("min_above_fraction must be in [0, 1)")

    def upsample_factor(self, stride: int) -> int:
        """The analysis grid's factor over the map grid for maps of this stride."""
        return stride if self.upsample == "stride" else int(self.upsample)

    def with_(self, **changes) -> "ParserConfig":
        """A copy with some fields changed (for tuning)."""
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ConfigError(f"unknown parser setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)


PRESETS: dict[str, ParserConfig] = {
    # Ours: cmu-python's accuracy choices (smoothing, length prior, strict pruning) at the
    # network's resolution, with sub-pixel refinement instead of upsampling whole maps and
    # the optimal limb matching instead of the greedy one.
    "default": ParserConfig(),
    # Lightweight OpenPose (Osokin) demo: maps x4 cubic, peaks 6 px apart at that
    # resolution (here: a 6 px disc NMS), 10 samples, >80% above 0.05, prune <3 parts / <0.2.
    "lightweight": ParserConfig(
        upsample=4, upsample_pafs=True, smooth_sigma=0.0, nms_radius=6, refine="none",
        paf_sampling="nearest", paf_score="mean_above", length_prior=0.0,
        min_parts=3, min_score=0.2, matching="greedy",
    ),
    # OpenPose C++ library: maps at network-input resolution, 3x3 NMS at 0.05 with a 7x7
    # weighted-centroid refinement, adaptive samples in [a, b), >95% above 0.05, score =
    # mean of the samples above, prune <3 parts / <0.4.
    "openpose": ParserConfig(
        upsample="stride", upsample_pafs=True, smooth_sigma=0.0, peak_threshold=0.05,
        refine="centroid", refine_radius=3, paf_samples=0, paf_sampling="nearest",
        paf_include_end=False, paf_score="mean_above", min_above_fraction=0.95,
        length_prior=0.0, min_limb_score=1e-6, min_parts=3, min_score=0.4, matching="greedy",
    ),
    # pytorch-openpose (the CMU Python demo): maps at input resolution, Gaussian smoothing
    # sigma 3, 4-neighbour peak test at 0.1, 10 samples, >80% above 0.05, mean + length
    # prior, prune <4 parts / <0.4.
    "cmu-python": ParserConfig(
        upsample="stride", upsample_pafs=True, smooth_sigma=3.0, nms_connectivity=4,
        refine="none", paf_sampling="nearest", min_parts=4, min_score=0.4, matching="greedy",
    ),
}


def get_preset(name: str) -> ParserConfig:
    """A preset by name (``default``, ``lightweight``, ``openpose``, ``cmu-python``)."""
    try:
        return PRESETS[name.lower()]
    except (KeyError, AttributeError):
        raise ParserError(
            f"unknown parser preset {name!r} (known: {', '.join(sorted(PRESETS))})"
        ) from None

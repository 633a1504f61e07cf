"""Everything a :class:`~posecli.inference.estimator.PoseEstimator` is made from, as one
frozen record of plain values (it travels to worker processes), checked once when made.

    opts = EstimatorOptions(height=256, scales=(1, 0.75), parser_options={"min_parts": 3})
    est = opts.build()

What needs the model itself (a height below its stride) is checked when it loads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from ..errors import ConfigError, ParserError
from ..parser import ParserConfig, get_preset

MIN_SCALE, MAX_SCALE = 0.05, 4.0
MAX_INPUT_HEIGHT = 4096  # the network input's height times the largest scale


@dataclass(frozen=True)
class EstimatorOptions:
    """``PoseEstimator`` keyword arguments (see its docstring); ``model`` as a store name or
    a path. ``scales`` are multiples of ``height`` from :data:`MIN_SCALE` to :data:`MAX_SCALE`;
    ``parser_options`` override single fields of the ``parser`` preset."""

    model: str | None = None
    profile: str | None = None
    device: str = "auto"
    precision: str = "auto"
    runtime: str = "auto"
    threads: int | None = None
    mode: str | None = None
    height: int | None = None
    scales: tuple[float, ...] | None = None
    flip: bool | None = None
    zoom: bool | None = None
    parser: str = "default"
    parser_options: Mapping[str, object] = field(default_factory=dict)
    max_people: int | None = None
    part_candidates: bool = False
    keep_maps: bool = False

    def __post_init__(self) -> None:
        if self.model is not None:
            object.__setattr__(self, "model", str(self.model))
        if self.scales is not None:
            scales = tuple(float(s) for s in self.scales)
            if not scales or not all(math.isfinite(s) and MIN_SCALE <= s <= MAX_SCALE for s in scales):
                raise ConfigError(f"scales must be numbers from {MIN_SCALE} to {MAX_SCALE}, e.g. 1,0.75,0.5",
                                  param="scales")
            object.__setattr__(self, "scales", scales)
            if self.height is not None and self.height * max(scales) > MAX_INPUT_HEIGHT:
                raise ConfigError(f"height={self.height} times scale {max(scales)} is over {MAX_INPUT_HEIGHT} pixels",
                                  param="scales")
        object.__setattr__(self, "parser_options", dict(self.parser_options))
        self.parser_config()  # a bad preset or setting fails now, before any work

    def parser_config(self) -> ParserConfig:
        """The parser settings: the preset with ``parser_options`` applied."""
        try:
            preset = get_preset(self.parser)
        except ParserError as exc:
            raise ConfigError(exc.message, param="parser") from None
        try:
            return preset.with_(**self.parser_options)
        except ConfigError as exc:
            raise ConfigError(exc.message, param="parser_options") from None

    def kwargs(self) -> dict:
        """The options as ``PoseEstimator`` keyword arguments (``model`` included)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def build(self):
        """The :class:`~posecli.inference.estimator.PoseEstimator` these options describe."""
        from .estimator import PoseEstimator

        kwargs = self.kwargs()
        return PoseEstimator(kwargs.pop("model"), **kwargs)

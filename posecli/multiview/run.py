"""``posecli 3d`` as one library call: several videos (or their 2D results) and a calibration -> 3D files.

:class:`ThreeDOptions` is checked once when built; :class:`ThreeDRun` checks the inputs
against the calibration and the outputs (before any work: camera count, sizes, frame counts,
offsets, writable and distinct outputs), then :meth:`ThreeDRun.run` computes the 2D of each
camera (posecli's video pipeline), the 3D frame by frame, the per-track consistency, and
writes every output at the end, atomically: an interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError, OutputError
from ..inference.options import EstimatorOptions
from ..io.atomic import check_writable
from ..io.outputs import check_distinct
from ..skeleton import Skeleton
from ..types import Frame, Person
from . import DEFAULT_MODE
from .calibration import Camera, check_sizes, with_sizes
from .loading import load_calibration
from .outputs import format_of, write_outputs
from .reconstruct import Frame3D, ReconstructionConfig, Reconstructor, finish

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v")  # what --render writes
DEFAULT_FPS = 30.0  # 2D results that do not say their rate (OpenPose folders)


@dataclass(frozen=True)
class ThreeDOptions:
    """What ``posecli 3d`` does. ``inputs``: one video per camera, or with ``from_2d`` one 2D
    result per camera (a posecli JSON file or a folder of OpenPose JSON files), in the
    calibration's camera order. ``calibration``: a TOML file, a folder of OpenPose XML files or
    several XML files. ``outs``: output files (.json, .trc, .csv). ``offsets``: per camera, the
    frames to skip at its start so that all cameras are aligned (None: frame-aligned;
    ``"auto"``: estimated from the 2D, :mod:`posecli.multiview.sync`, up to
    ``max_lag`` frames either way).
    ``max_frames``: stop after this many aligned frames. ``fps``: overrides the inputs' rate.
    ``render``: a check video (.mp4, .avi): every camera with the 3D drawn back on it (videos only).
    ``estimator``: the 2D settings for videos (None: the defaults at ``mode='balanced'``)."""

    inputs: tuple[Path, ...]
    calibration: tuple[Path, ...]
    outs: tuple[Path, ...]
    from_2d: bool = False
    offsets: tuple[int, ...] | str | None = None
    max_frames: int | None = None
    fps: float | None = None
    max_lag: int = 60
    render: Path | None = None
    estimator: EstimatorOptions | None = None
    config: ReconstructionConfig = field(default_factory=ReconstructionConfig)

    def __post_init__(self) -> None:
        if len(self.inputs) < 2:
            raise ConfigError(f"{len(self.inputs)} input(s): 3D needs at least two cameras", param="inputs")
        if not self.outs:
            raise ConfigError("no output: give at least one of .json, .trc, .csv", param="outs")
        for out in self.outs:
            try:
                format_of(out)
            except OutputError as exc:
                raise ConfigError(exc.message, param="out") from None
        if isinstance(self.offsets, str) and self.offsets != "auto":
            raise ConfigError(f"offsets={self.offsets!r}: expected frame counts or 'auto'", param="offsets")
        if self.offsets is not None and self.offsets != "auto":
            if len(self.offsets) != len(self.inputs):
                raise ConfigError(f"offsets={list(self.offsets)}: one per input ({len(self.inputs)})",
                                 param="offsets")
            if any(o < 0 for o in self.offsets):
                raise ConfigError(f"offsets={list(self.offsets)}: frames to skip are >= 0", param="offsets")
        if self.render is not None and self.from_2d:
            raise ConfigError("render=...: the check video draws on the videos; it needs videos, "
                             "not 2D results", param="render")
        if self.render is not None and Path(self.render).suffix.lower() not in VIDEO_SUFFIXES:
            raise ConfigError(f"render={self.render}: use .mp4 or .avi", param="render")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"max_frames={self.max_frames}: expected >= 1", param="max_frames")
        if self.fps is not None and not (np.isfinite(self.fps) and 0 < self.fps <= 1000):
            raise ConfigError(f"fps={self.fps}: expected a number in (0, 1000]", param="fps")


@dataclass
class _Input:
    """One camera's input: its name, size, frame count, rate, and (2D results) its frames."""

    path: Path
    size_wh: tuple[int, int] | None
    frame_count: int
    fps: float | None
    frames: list[Frame] | None = None


class ThreeDRun:
    """One ``posecli 3d`` job (see the module doc). ``estimator``: a built 2D estimator for
    videos (None: built from ``options.estimator`` when the 2D starts). After :meth:`run`:
    ``frames`` (the 3D), ``skeleton``, ``seconds_2d``/``seconds_3d``."""

    def __init__(self, options: ThreeDOptions, estimator=None):
        self.options = options
        self.estimator = estimator
        cameras = load_calibration(options.calibration)
        if len(cameras) != len(options.inputs):
            raise InputError(f"{len(cameras)} cameras in the calibration for {len(options.inputs)} inputs",
                             path=options.calibration[0])
        self.inputs = [(_probe_2d if options.from_2d else _probe_video)(p) for p in options.inputs]
        sizes = [i.size_wh or c.size_wh for i, c in zip(self.inputs, cameras, strict=True)]
        self.cameras: list[Camera] = with_sizes(cameras, sizes)
        known = [(c, i) for c, i in zip(self.cameras, self.inputs, strict=True) if i.size_wh is not None]
        check_sizes([c for c, _ in known], [i.size_wh for _, i in known], [str(i.path) for _, i in known],
                    options.calibration[0])
        self.auto = options.offsets == "auto"
        given = options.offsets is not None and not self.auto
        self.offsets = list(options.offsets) if given else [0] * len(self.inputs)
        self.count = self._aligned_count()
        self.sync = None  # the Offsets estimate, with auto offsets
        rates = [i.fps for i in self.inputs if i.fps]
        self.fps = options.fps or (rates[0] if rates else DEFAULT_FPS)
        outs = [("out", o) for o in options.outs] + [("render", options.render)]
        check_distinct(options.inputs, outs)  # OutputConflict: a usage mistake
        for _, out in outs:
            if out is not None:
                check_writable(out)
        self.frames: list[Frame3D] = []
        self.seconds_2d = self.seconds_3d = 0.0  # the 2D (reading it, with from_2d) and the 3D stage
        self.skeleton: Skeleton | None = None

    def _aligned_count(self) -> int:
        counts = [i.frame_count - o for i, o in zip(self.inputs, self.offsets, strict=True)]
        for i, o in zip(self.inputs, self.offsets, strict=True):
            if o >= i.frame_count:
                raise InputError(f"offset {o} is past its {i.frame_count} frames", path=i.path)
        if self.auto:
            return max(counts)  # each input read whole; aligned once the offsets are known
        if self.options.offsets is None and len(set(counts)) > 1:
            listing = ", ".join(f"{i.path.name}: {i.frame_count}" for i in self.inputs)
            raise InputError(f"the inputs have different frame counts ({listing}); give offsets=N1,N2,.. "
                             "(frames to skip at each start) to align them",
                             param="offsets")
        return self._at_most_max_frames(min(counts))

    def _at_most_max_frames(self, count: int) -> int:
        return min(count, self.options.max_frames) if self.options.max_frames else count

    @property
    def expected(self) -> int:
        """2D frames to compute (for a progress bar): every camera's aligned frames."""
        if self.options.from_2d:
            return 0
        if self.auto:
            return sum(i.frame_count for i in self.inputs)
        return self.count * len(self.inputs)

    def run(self, progress: Callable[[int], None] | None = None) -> ThreeDRun:
        if self.estimator is None and not self.options.from_2d:
            self.estimator = (self.options.estimator or EstimatorOptions(mode=DEFAULT_MODE)).build()
        started = time.perf_counter()
        if self.auto:
            views = self._aligned_automatically(progress)
        else:
            views = [self._views_of(c, progress, self.offsets[c], self.count)
                     for c in range(len(self.inputs))]
        self.skeleton = self._first_skeleton(views)
        for c, v in enumerate(views):
            other = next((p.skeleton for frame in v for p in frame
                          if p.skeleton.name != self.skeleton.name), None)
            if other is not None:
                raise InputError(f"skeleton '{other.name}' here, '{self.skeleton.name}' in another input: "
                                 "the cameras' 2D must use one skeleton", path=self.options.inputs[c])
        self.seconds_2d = time.perf_counter() - started
        started = time.perf_counter()
        recon = Reconstructor(self.cameras, self.skeleton, self.options.config)
        pixels: dict[tuple[int, int, int], np.ndarray] = {}
        for t in range(self.count):
            per_camera = [v[t] for v in views]
            self.frames.append(recon.frame(per_camera, self.offsets_index(t), t / self.fps))
            for c, people in enumerate(per_camera):
                for i, p in enumerate(people):
                    pixels[t, c, i] = p.xy
        finish(self.frames, pixels, self.cameras, self.skeleton, self.fps, self.options.config.limbs)
        self.seconds_3d = time.perf_counter() - started
        write_outputs(self.options.outs, self.frames, self.skeleton, [c.name for c in self.cameras], self.fps,
                      {"offsets": self.offsets, "offsets_estimated": self.auto})
        if self.options.render is not None:
            from .render import render_check

            render_check(self.options.render, [i.path for i in self.inputs], self.offsets, self.cameras,
                         self.frames, self.skeleton, self.fps)
        return self

    def summary(self) -> list[str]:
        """A few lines on the result: frames, people, reprojection error, views used."""
        people = [p for f in self.frames for p in f.people]
        ids = {p.id for p in people if p.id is not None}
        errors = np.concatenate([p.error_px for p in people]) if people else np.zeros(0)
        errors = errors[np.isfinite(errors)]
        views = [int(n) for p in people for n in p.used.sum(axis=0) if n]
        lines = [f"3D: {len(self.frames)} frames, {len(ids)} people"
                 + (f", reprojection median {np.median(errors):.1f} px" if len(errors) else "")
                 + (f", {np.mean(views):.2f} of {len(self.cameras)} cameras per point" if views else "")]
        if self.sync is not None:
            sync = self.sync
            errors = ", ".join(f"{e:.1f}" for e in sync.error_px[1:])
            zero = ", ".join(f"{e:.1f}" for e in sync.error_at_zero_px[1:])
            lines.append(f"offsets estimated from the 2D: {','.join(map(str, sync.frames))} "
                         f"(two-view error with the first camera {errors} px; {zero} px without offsets)")
        lines += [f"wrote {out}" for out in self.options.outs]
        return lines

    def offsets_index(self, t: int) -> int:
        """The frame number of aligned frame ``t``: the first camera's own index."""
        return t + self.offsets[0]

    def _aligned_automatically(self, progress) -> list[list[list[Person]]]:
        """Every input's people in all its frames, the offsets estimated, the views aligned."""
        from .sync import estimate_offsets

        whole = [self._views_of(c, progress, 0, i.frame_count) for c, i in enumerate(self.inputs)]
        skeleton = self._first_skeleton(whole)
        self.sync = estimate_offsets(self.cameras, whole, skeleton.num_parts, self.options.max_lag)
        self.offsets = list(self.sync.frames)
        self.count = self._at_most_max_frames(min(len(v) - o for v, o in zip(whole, self.offsets, strict=True)))
        if self.count < 1:
            raise InputError(f"the estimated offsets {self.offsets} leave no frame in common",
                             param="offsets")
        return [v[o: o + self.count] for v, o in zip(whole, self.offsets, strict=True)]

    def _first_skeleton(self, views: list[list[list[Person]]]) -> Skeleton:
        """The skeleton of the first person found in ``views``; InputError when nobody is."""
        skeleton = next((p.skeleton for v in views for frame in v for p in frame), None)
        if skeleton is None:
            raise InputError("nobody was found in any camera: no 3D to make", path=self.options.inputs[0])
        return skeleton

    def _views_of(self, c: int, progress, first: int, count: int) -> list[list[Person]]:
        """Camera ``c``'s people in its frames ``first`` to ``first + count``."""
        inp = self.inputs[c]
        if inp.frames is not None:
            by_index = {f.index if f.index is not None else n: f for n, f in enumerate(inp.frames)}
            return [list(by_index[first + t].people) if first + t in by_index else []
                    for t in range(count)]
        from ..io.video import VideoSource
        from ..video.pipeline import Pipeline
        from ..video.run import tune_decoding

        source = VideoSource(inp.path, first_frame=first, stop_frame=first + count)
        tune_decoding(source, self.estimator)
        out: list[list[Person]] = [[] for _ in range(count)]
        for result in Pipeline(self.estimator, source, source=str(inp.path)):
            t = result.index - first
            if 0 <= t < count:
                out[t] = list(result.frame.people)
            if progress is not None:
                progress(1)
        return out


def _probe_video(path: Path) -> _Input:
    from ..io.video import VideoSource

    source = VideoSource(path)
    if not source.frame_count:
        raise InputError("cannot tell how many frames this video has", path=path)
    return _Input(Path(path), source.size_wh, source.frame_count, source.fps or None)


def _probe_2d(path: Path) -> _Input:
    """A posecli JSON file or a folder of OpenPose ``*_keypoints.json`` files, read whole."""
    from ..formats.readers import load_openpose_json, load_posecli_json

    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise InputError("no OpenPose JSON files in this folder", path=path)
        frames = [load_openpose_json(f) for f in files]
        for n, frame in enumerate(frames):
            frame.index = n
        return _Input(path, None, len(frames), None, frames)
    frames = load_posecli_json(path)
    if not frames:
        raise InputError("no frames in these results", path=path)
    sizes = {tuple(f.size_wh) for f in frames if f.size_wh and f.size_wh[0]}
    times = [f.timestamp for f in frames if f.timestamp is not None]
    # the rate from the frames' times (written to 0.1 ms): 30.0016 -> 30.0, 29.97 stays
    fps = None
    if len(times) > 1 and times[-1] > times[0]:
        fps = round((len(times) - 1) / (times[-1] - times[0]), 2)
    last = max((f.index for f in frames if f.index is not None), default=len(frames) - 1)
    return _Input(path, next(iter(sizes)) if len(sizes) == 1 else None, last + 1, fps, frames)


def reconstruction_config(max_people: int | None = None, smooth_hz: float | None = None,
                          limbs: bool = True) -> ReconstructionConfig:
    """The 3D settings from the few a user chooses (the rest at their reference values)."""
    from .associate import AssociationConfig
    from .limbs import LimbConfig

    try:
        return ReconstructionConfig(association=AssociationConfig(max_people=max_people),
                                    limbs=LimbConfig(cutoff_hz=smooth_hz, iterations=20 if limbs else 0))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None

"""Person ids across video frames (online): keypoint similarity, motion, confirmation.

Each frame, in order:

1. A scene cut (the whole picture changed) ends every track.
2. Tracks unseen for longer than ``max_gap_s`` are forgotten (unconfirmed ones sooner).
3. Every track predicts where its person is now: last keypoints moved by the track's
   velocity (pixels per second, from keypoint displacements), with a search radius that
   grows with the time the person has been unseen.
4. Two-stage association, as ByteTrack does with boxes: people with a high score are
   matched first to the confirmed tracks (COCO's object keypoint similarity, optimal
   assignment by :func:`scipy.optimize.linear_sum_assignment`); then low-score people to
   the confirmed tracks left over, so a person whose score dips keeps the track rather than
   being dropped and re-born; then the rest to the unconfirmed tracks.
5. High-score people left over start unconfirmed tracks. A track gets its id once it has
   been seen in ``min_hits`` frames spanning ``confirm_s`` seconds: a short false detection
   never gets one. People without a confirmed track are still returned, without an id.

Times are seconds (the frames' timestamps), so 25 and 60 fps clips behave alike.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..errors import ConfigError
from ..skeleton import Skeleton
from ..types import Frame, Person
from .appearance import SIZE, histogram_similarity, torso_histograms
from .matching import keypoint_area, keypoint_sigmas, oks_matrix
from .smooth import OneEuroConfig, OneEuroFilter


#: The longest time between two frames over which a track seen in the first is kept although
#: that is more than ``max_gap_s`` (a time-lapse); beyond it (a lying timestamp, a stream
#: paused for hours) every track ends, and motion is never extrapolated that far.
ONE_FRAME_MAX_S = 600.0


@dataclass(frozen=True)
class TrackerConfig:
    """Tracking settings (times in seconds of video; reference values chosen with
    ``python -m bench tracking``).

    Online tracker:

    - ``max_gap_s``: how long a confirmed track may go unseen and still get its person back
      (at least one frame: where frames come further apart, a track seen in the frame before
      is kept).
    - ``max_age``: the same in processed frames instead of seconds (None: use ``max_gap_s``).
    - ``min_hits``, ``confirm_s``: a new track gets an id once seen in ``min_hits`` frames
      spanning at least ``confirm_s``; unconfirmed, it is dropped when unseen for ``confirm_s``
      (or, where frames come further apart, when it misses a frame).
    - ``high_score``: people scoring at least this (the parser's person score) may start
      tracks and are matched first; lower ones only continue existing tracks.
    - ``min_similarity``: the lowest OKS (0..1) at which a person may continue a track.
    - ``min_area``: floor of the person scale in OKS, pixels squared.
    - ``velocity_s``: time constant of the track velocity estimate (its smoothing).
    - ``search_growth``: per second unseen, how much the OKS scale (search radius) grows.
    - ``appearance``: weight (0..1) of the torso colours (:mod:`posecli.video.appearance`) in
      the similarity: OKS x (1 - w + w x colour similarity); 0 (the default: it did not
      help on the bench's photo clip, where errors come from the detector) turns it off.
    - ``scene_cut``: image change (0..1, see :mod:`posecli.video.scenecut`) above which a
      frame starts a new scene and every track ends; 0 turns cut detection off.
    - ``fps``: the frame rate assumed when frames carry no timestamps.

    Offline (``--track offline``, :mod:`posecli.video.offline`):

    - ``lookahead_s``: how far ahead results are held back (decoded frames are kept that long).
    - ``link_gap_s``: the longest gap between two track fragments that may be joined.
    - ``link_similarity``: the lowest OKS of two fragments' extrapolations for a join.
    - ``fill_gap_s``: gaps of a track up to this long are filled by interpolation.
    - ``smooth_s``: Gaussian sigma of the zero-phase smoothing (with ``--smooth``).
    """

    max_gap_s: float = 1.0
    max_age: int | None = None
    min_hits: int = 3
    confirm_s: float = 0.1
    high_score: float = 0.6
    min_similarity: float = 0.2
    min_area: float = 32.0 * 32.0
    velocity_s: float = 0.1
    search_growth: float = 1.0
    appearance: float = 0.0
    scene_cut: float = 0.28
    fps: float = 30.0
    lookahead_s: float = 1.5
    link_gap_s: float = 1.2
    link_similarity: float = 0.3
    fill_gap_s: float = 0.5
    smooth_s: float = 0.05

    def __post_init__(self) -> None:
        def finite(name: str, low: float = 0.0, high: float = math.inf, *, open_low: bool = False) -> None:
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or not low <= v <= high or (open_low and v == low):
                bound = f"> {low}" if open_low else f">= {low}" if high == math.inf else f"in [{low}, {high}]"
                raise ConfigError(f"{name}={v!r}: must be a number {bound}")

        for name in ("max_gap_s", "confirm_s", "high_score", "min_area", "search_growth", "lookahead_s",
                     "link_gap_s", "fill_gap_s", "smooth_s"):
            finite(name)
        for name in ("min_similarity", "scene_cut", "link_similarity", "appearance"):
            finite(name, 0.0, 1.0)
        finite("fps", open_low=True)
        finite("velocity_s", open_low=True)
        if self.max_age is not None and (isinstance(self.max_age, bool) or int(self.max_age) != self.max_age
                                         or self.max_age < 0):
            raise ConfigError(f"max_age={self.max_age!r}: must be a whole number of frames >= 0")
        if isinstance(self.min_hits, bool) or int(self.min_hits) != self.min_hits or self.min_hits < 1:
            raise ConfigError(f"min_hits={self.min_hits!r}: must be a whole number >= 1")

    def max_age_frames(self, fps: float = 60.0) -> int:
        """The longest gap a track survives, in frames at ``fps`` (``max_age`` when set)."""
        if self.max_age is not None:
            return int(self.max_age)
        return math.ceil(self.max_gap_s * fps)


@dataclass
class TrackState:
    """One track as the tracker holds it.

    ``key``: unique per tracker, given at birth; ``id``: the public id, given at
    confirmation (None before). Times in seconds; ``xy`` (K, 2) last known keypoints,
    NaN where never or long unseen; ``velocity`` (2,) pixels per second.
    """

    key: int
    xy: np.ndarray
    seen: np.ndarray  # (K,) time each keypoint was last observed (-inf: never)
    first: float
    last: float
    hits: int
    velocity: np.ndarray
    area: float
    id: int | None = None
    smoother: OneEuroFilter | None = None
    colours: np.ndarray | None = None  # torso colour histogram, a running mean

    @property
    def confirmed(self) -> bool:
        return self.id is not None

    def predicted(self, t: float) -> np.ndarray:
        """(K, 2) where the keypoints should be at time ``t``."""
        return self.xy + self.velocity * (t - self.last)


_Track = TrackState  # the name before tracks had public state


def mix_colours(old: np.ndarray | None, new: np.ndarray, keep: float = 0.8) -> np.ndarray:
    """Running mean of torso histograms (``keep``: weight of the old one)."""
    return new.copy() if old is None else keep * old + (1.0 - keep) * new


class Tracker:
    """Gives each person a ``track_id`` that stays the same across frames (online).

    Call :meth:`update` with each frame's people in order (or the tracker itself on a
    :class:`Frame`, with the image for scene-cut detection); it returns copies carrying
    ids (None until the person's track is confirmed) and smoothed keypoints when
    ``smoothing`` is a :class:`OneEuroConfig`. Ids start at 0 and are never reused.
    """

    def __init__(self, config: TrackerConfig | None = None, smoothing: OneEuroConfig | None = None):
        self.config = config or TrackerConfig()
        self.smoothing = smoothing
        self.cuts = 0  # scene cuts seen
        self._tracks: list[TrackState] = []
        self._next_key = 0
        self._next_id = 0
        self._frames = 0
        self._t: float | None = None
        self._interval = 0.0  # seconds since the frame before (0 at the first)
        self._sigmas: dict[str, np.ndarray] = {}
        self._cut_detector = None
        self.last_colours: np.ndarray | None = None  # the last frame's torso histograms

    @property
    def live_ids(self) -> list[int]:
        """Ids of the confirmed tracks held now (seen recently or waiting for their person)."""
        return [t.id for t in self._tracks if t.id is not None]

    @property
    def time(self) -> float:
        """Seconds of the last frame given to :meth:`assign` (0 before any)."""
        return 0.0 if self._t is None else self._t

    @property
    def tracks(self) -> list[TrackState]:
        return list(self._tracks)

    def __call__(self, frame: Frame, image: np.ndarray | None = None) -> Frame:
        cut = self.is_cut(image)
        people = self.update(frame.people, frame.timestamp, cut=cut, image=image)
        return dataclasses.replace(frame, people=people, extra={**frame.extra, "tracked": True})

    def push(self, frame: Frame, image: np.ndarray | None = None) -> list[tuple[Frame, np.ndarray | None]]:
        """The pipeline's interface: a frame in, the frames ready for output (here: it)."""
        return [(self(frame, image), image)]

    def flush(self) -> list[tuple[Frame, np.ndarray | None]]:
        return []

    def is_cut(self, image: np.ndarray | None) -> bool:
        """Whether ``image`` starts a new scene (False without an image or with cuts off)."""
        if image is None or self.config.scene_cut <= 0:
            return False
        if self._cut_detector is None:
            from .scenecut import SceneCutDetector

            self._cut_detector = SceneCutDetector(self.config.scene_cut)
        return self._cut_detector(image)

    def reset(self) -> None:
        """End every track (ids are not reused)."""
        self._tracks = []

    def drop(self, key: int) -> None:
        """Forget the track with ``key`` (the offline linker has given its person elsewhere)."""
        self._tracks = [t for t in self._tracks if t.key != key]

    def update(self, people: list[Person], timestamp: float | None = None, *, cut: bool = False,
               image: np.ndarray | None = None, colours: np.ndarray | None = None) -> list[Person]:
        """People of the next frame -> the same people with ids (input is not modified).
        ``image``: the frame (BGR), for the appearance cue (or ``colours``, see :meth:`assign`)."""
        tracks = self.assign(people, timestamp, cut=cut, image=image, colours=colours)
        t = self._t
        out = []
        for person, track in zip(people, tracks):
            xy = person.xy
            if track is not None and track.smoother is not None:
                xy = track.smoother(person.xy, float(t))
            tid = track.id if track is not None else None
            out.append(dataclasses.replace(person, xy=xy, scores=person.scores.copy(), track_id=tid))
        return out

    def assign(self, people: list[Person], timestamp: float | None = None, *, cut: bool = False,
               image: np.ndarray | None = None, colours: np.ndarray | None = None) -> list[TrackState | None]:
        """The track each person of the next frame continues or starts (None: a low-score
        person no track wanted). Updates the tracks; :meth:`update` is this plus ids.
        ``colours``: the people's torso histograms when already computed from ``image``."""
        cfg = self.config
        t = self._clock(timestamp)
        if colours is None and image is not None and cfg.appearance > 0:
            colours = torso_histograms(people, image)
        self.last_colours = colours
        if cut:
            self.cuts += 1
            self.reset()
        # 1. Forget tracks unseen for too long.
        self._tracks = [tr for tr in self._tracks if t - tr.last <= self._max_gap(tr)]
        # 2. Split people by score; predict every track.
        high = [i for i, p in enumerate(people) if p.score >= cfg.high_score]
        low = [i for i, p in enumerate(people) if p.score < cfg.high_score]
        confirmed = [j for j, tr in enumerate(self._tracks) if tr.confirmed]
        tentative = [j for j, tr in enumerate(self._tracks) if not tr.confirmed]
        sim = self._similarity(people, t, colours)
        # 3. Two-stage association: high first, then low, to confirmed tracks; then the rest
        #    to unconfirmed tracks.
        match: dict[int, int] = {}
        for rows, cols in ((high, confirmed), (low, confirmed), (high + low, tentative)):
            rows = [i for i in rows if i not in match]
            cols = [j for j in cols if j not in match.values()]
            match.update(self._match(sim, rows, cols))
        # 4. Update matched tracks; high-score people left over start tracks.
        out: list[TrackState | None] = []
        for i, person in enumerate(people):
            if i in match:
                track = self._tracks[match[i]]
                self._advance(track, person, t)
            elif i in high and person.visible.any():
                track = self._new_track(person, t)
            else:
                track = None
            if track is not None and colours is not None and np.isfinite(colours[i]).all():
                track.colours = mix_colours(track.colours, colours[i])
            out.append(track)
        return out

    # -- helpers ----------------------------------------------------------------------------------
    def _clock(self, timestamp: float | None) -> float:
        """Seconds of the next frame: its timestamp, else frames / fps; never backwards."""
        self._frames += 1
        step = 1.0 / self.config.fps
        if timestamp is None or not math.isfinite(timestamp):
            t = self._frames * step if self._t is None else self._t + step
        else:
            t = float(timestamp)
        if self._t is not None and t <= self._t:  # a repeated or backwards timestamp
            t = self._t + 1e-3 * step
        self._interval = 0.0 if self._t is None else t - self._t
        self._t = t
        return t

    def _max_gap(self, track: TrackState) -> float:
        cfg = self.config
        # Where frames come further apart than the gap (--step, a time-lapse, a slow machine on
        # a live source), a track seen in the frame before is kept: else none would last.
        one_frame = min(1.5 * self._interval, ONE_FRAME_MAX_S)
        if not track.confirmed:
            return max(cfg.confirm_s, one_frame)
        if cfg.max_age is not None:
            return (cfg.max_age + 0.5) * self._frame_s()
        return max(cfg.max_gap_s, one_frame)

    def _frame_s(self) -> float:
        """Typical seconds between processed frames so far."""
        if self._t is None or self._frames < 2:
            return 1.0 / self.config.fps
        return max(self._t / self._frames, 1e-6) if self._t > 0 else 1.0 / self.config.fps

    def _sigmas_of(self, skeleton: Skeleton) -> np.ndarray:
        s = self._sigmas.get(skeleton.name)
        if s is None:
            s = self._sigmas[skeleton.name] = keypoint_sigmas(skeleton)
        return s

    def _similarity(self, people: list[Person], t: float, colours: np.ndarray | None = None) -> np.ndarray:
        """(N people, T tracks) OKS to each track's prediction, scale grown with its gap,
        weighed by torso colour similarity where both are known."""
        cfg = self.config
        sim = np.zeros((len(people), len(self._tracks)))
        if not people or not self._tracks:
            return sim
        k = people[0].skeleton.num_parts
        same = [j for j, tr in enumerate(self._tracks) if len(tr.xy) == k]
        rows = [i for i, p in enumerate(people) if p.skeleton.num_parts == k]
        if not same or not rows:
            return sim
        det = np.stack([people[i].xy for i in rows])
        pred = np.stack([self._tracks[j].predicted(t) for j in same])
        det_area = np.array([keypoint_area(people[i].xy) for i in rows])
        tr_area = np.array([self._tracks[j].area for j in same])
        grow = (1.0 + cfg.search_growth * np.array([t - self._tracks[j].last for j in same])) ** 2
        area = np.maximum(np.maximum(det_area[:, None], tr_area[None]), cfg.min_area) * grow[None]
        sim[np.ix_(rows, same)] = oks_matrix(det, pred, area, self._sigmas_of(people[rows[0]].skeleton))
        if colours is not None and cfg.appearance > 0:
            theirs = np.stack([tr.colours if tr.colours is not None else np.full(SIZE, np.nan) for tr in self._tracks])
            look = np.nan_to_num(histogram_similarity(colours, theirs), nan=1.0)
            sim *= 1.0 - cfg.appearance + cfg.appearance * look
        return sim

    def _match(self, sim: np.ndarray, rows: list[int], cols: list[int]) -> dict[int, int]:
        """Optimal one-to-one pairs of ``rows`` x ``cols`` of ``sim``; weak pairs refused."""
        if not rows or not cols:
            return {}
        sub = sim[np.ix_(rows, cols)]
        out = {}
        for r, c in zip(*linear_sum_assignment(sub, maximize=True)):
            if sub[r, c] >= self.config.min_similarity and sub[r, c] > 0:
                out[rows[r]] = cols[c]
        return out

    def _new_track(self, person: Person, t: float) -> TrackState:
        smoother = OneEuroFilter(self.smoothing) if self.smoothing is not None else None
        track = TrackState(self._next_key, person.xy.copy(), np.where(person.visible, t, -np.inf), t, t, 1,
                           np.zeros(2), keypoint_area(person.xy), None, smoother)
        self._next_key += 1
        self._tracks.append(track)
        self._confirm(track)
        return track

    def _confirm(self, track: TrackState) -> None:
        cfg = self.config
        if track.id is None and track.hits >= cfg.min_hits and track.last - track.first >= cfg.confirm_s - 1e-9:
            track.id = self._next_id
            self._next_id += 1

    def _advance(self, track: TrackState, person: Person, t: float) -> None:
        """Move ``track`` to ``person``: velocity, keypoints, scale, confirmation."""
        cfg = self.config
        dt = max(t - track.last, 1e-6)
        vis = person.visible
        common = vis & np.isfinite(track.xy).all(axis=1)
        step = track.velocity
        if common.any():
            step = (person.xy[common] - track.xy[common]).mean(axis=0) / dt
            a = 1.0 - math.exp(-dt / cfg.velocity_s) if track.hits > 1 else 1.0
            track.velocity = a * step + (1 - a) * track.velocity
        # Keypoints not seen now move with the body; long-unseen ones are dropped.
        moved = track.xy + step * dt
        track.xy = np.where(vis[:, None], person.xy, moved)
        track.seen = np.where(vis, t, track.seen)
        track.xy[t - track.seen > self._max_gap(track)] = np.nan
        area = keypoint_area(person.xy)
        if area > 0:
            track.area = area if track.area == 0 else 0.5 * (track.area + area)
        track.last = t
        track.hits += 1
        self._confirm(track)

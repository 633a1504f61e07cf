"""Offline tracking for files: the online tracker plus a look-ahead of ``lookahead_s`` seconds.

A file is not live, so results may be held back a little and corrected before they are
written. Frames go through the online :class:`~posecli.video.track.Tracker` (its track
*fragments*) and wait in a buffer of ``lookahead_s`` seconds; meanwhile:

- **Confirmation without loss**: a fragment that is confirmed later gets its id on every
  frame it was seen, not only from its confirming frame on.
- **Linking**: a newly confirmed fragment that starts shortly after another ended
  (``link_gap_s``), in the same scene, and where the two extrapolated motions meet
  (OKS of each end moved by its velocity to the other's time, at least ``link_similarity``),
  continues that fragment's id. Fragments overlapping in time are never joined.
- **Gap filling**: a track unseen for up to ``fill_gap_s`` gets its keypoints linearly
  interpolated in the frames between (people with score 0, keypoint scores 0).
- **Zero-phase smoothing** (``smooth=True``): each tracked person's keypoints are averaged
  with a Gaussian of ``smooth_s`` seconds centred on the frame (past and future), so
  smoothing adds no lag.

Frames come out in order; memory holds ``lookahead_s`` of frames, at most
:data:`LOOKAHEAD_MAX_FRAMES` (their images too, for
drawing) and the fragments of the last few seconds, whatever the video's length.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..types import Frame, Person
from .matching import keypoint_area, keypoint_sigmas, oks
from .track import Tracker, TrackerConfig, mix_colours

_ENDS = 5  # observations kept at each end of a fragment (its start and end velocity)


@dataclass
class _Fragment:
    """One online track as the linker sees it: first and last observations, its id."""

    key: int
    scene: int
    head: list = field(default_factory=list)  # first (t, xy) observations
    tail: deque = field(default_factory=lambda: deque(maxlen=_ENDS))  # last (t, xy) observations
    area: float = 0.0
    id: int | None = None
    continued: bool = False  # another fragment carries its id on
    colours: np.ndarray | None = None  # torso colour histogram, a running mean

    @property
    def first(self) -> float:
        return self.head[0][0]

    @property
    def last(self) -> float:
        return self.tail[-1][0]

    def observe(self, t: float, xy: np.ndarray) -> None:
        if len(self.head) < _ENDS:
            self.head.append((t, xy))
        self.tail.append((t, xy))
        a = keypoint_area(xy)
        if a > 0:
            self.area = a if self.area == 0 else 0.5 * (self.area + a)


def _velocity(obs) -> np.ndarray:
    """(2,) pixels per second from the first to the last of ``obs`` [(t, xy)], 0 when unknown."""
    (t0, a), (t1, b) = obs[0], obs[-1]
    common = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    if t1 <= t0 or not common.any():
        return np.zeros(2)
    return (b[common] - a[common]).mean(axis=0) / (t1 - t0)


def _between(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """(K, 2) keypoints a fraction ``w`` of the way from ``a`` to ``b`` (NaN where either misses)."""
    return (1.0 - w) * a + w * b


@dataclass
class _Held:
    """A frame waiting in the look-ahead buffer."""

    frame: Frame
    image: np.ndarray | None
    t: float
    keys: list  # fragment key of each person (None: no track)
    filled: list = field(default_factory=list)  # (key, xy, template person) interpolated


#: The most frames held back for looking ahead, whatever their timestamps say: 1.5 s at
#: 200 fps. Memory stays bounded by frames, not by seconds times a declared frame rate.
LOOKAHEAD_MAX_FRAMES = 300


class OfflineTracker:
    """Tracks people across a whole file, looking ``config.lookahead_s`` ahead.

    The pipeline's interface: :meth:`push` a frame (and its image, for scene cuts; it is
    held and handed back) and get the frames ready for output, in order; :meth:`flush`
    at the end returns the rest. :meth:`run` does both over an iterable of frames.
    """

    def __init__(self, config: TrackerConfig | None = None, smooth: bool = False):
        self.config = config or TrackerConfig()
        self.smooth = bool(smooth)
        self.online = Tracker(self.config)
        self.links = 0  # fragments joined to an earlier one
        self.filled = 0  # people filled in by interpolation
        self._held: deque[_Held] = deque()
        self._frags: dict[int, _Fragment] = {}
        self._history: dict[int, deque] = {}  # id -> recent (t, raw xy) already written
        self._next_id = 0
        self._sigmas: np.ndarray | None = None

    def run(self, frames):
        """Frames in -> tracked frames out, in order (images are not used)."""
        for frame in frames:
            for out, _ in self.push(frame):
                yield out
        for out, _ in self.flush():
            yield out

    def push(self, frame: Frame, image: np.ndarray | None = None, *,
             colours: np.ndarray | None = None) -> list[tuple[Frame, np.ndarray | None]]:
        """``colours``: the people's torso histograms, when already computed from ``image``."""
        cfg = self.config
        cut = self.online.is_cut(image)
        tracks = self.online.assign(frame.people, frame.timestamp, cut=cut, image=image, colours=colours)
        colours = self.online.last_colours
        t = self.online.time
        scene = self.online.cuts
        held = _Held(frame, image, t, [tr.key if tr is not None else None for tr in tracks])
        for i, (person, tr) in enumerate(zip(frame.people, tracks)):
            if tr is None:
                continue
            frag = self._frags.get(tr.key)
            if frag is None:
                frag = self._frags[tr.key] = _Fragment(tr.key, scene)
            elif frag.tail:
                self._fill(frag, frag.tail[-1], (t, person.xy), person)
            frag.observe(t, person.xy.copy())
            if colours is not None and np.isfinite(colours[i]).all():
                frag.colours = mix_colours(frag.colours, colours[i])
            if tr.confirmed and frag.id is None:
                self._give_id(frag, person)
        self._held.append(held)
        out = []
        # held for lookahead_s, and never more than LOOKAHEAD_MAX_FRAMES frames (a file lying
        # about its rate, 1e9 fps, would otherwise hold its whole length, images and all)
        while self._held and (self._held[0].t < t - cfg.lookahead_s or len(self._held) > LOOKAHEAD_MAX_FRAMES):
            out.append(self._release(self._held.popleft()))
        self._forget(t)
        return out

    def flush(self) -> list[tuple[Frame, np.ndarray | None]]:
        out = []
        while self._held:
            out.append(self._release(self._held.popleft()))
        return out

    # -- linking and filling ------------------------------------------------------------------------
    def _give_id(self, frag: _Fragment, person: Person) -> None:
        """A fragment just confirmed: the id of the fragment it continues, else a new one."""
        prev = self._link(frag, person)
        if prev is None:
            frag.id = self._next_id
            self._next_id += 1
            return
        self.links += 1
        frag.id = prev.id
        prev.continued = True
        self.online.drop(prev.key)
        self._fill(frag, prev.tail[-1], frag.head[0], person, key=frag.key)

    def _link(self, frag: _Fragment, person: Person) -> _Fragment | None:
        """The ended fragment ``frag`` continues best, if any is similar enough."""
        cfg = self.config
        if self._sigmas is None or len(self._sigmas) != person.skeleton.num_parts:
            self._sigmas = keypoint_sigmas(person.skeleton)
        start, v_start = frag.head[0], _velocity(frag.head)
        best, best_sim = None, cfg.link_similarity
        for cand in self._frags.values():
            if (cand is frag or cand.id is None or cand.continued or cand.scene != frag.scene
                    or len(cand.tail[-1][1]) != len(start[1])):
                continue
            gap = frag.first - cand.last
            if not 0 < gap <= cfg.link_gap_s:
                continue
            end, v_end = cand.tail[-1], _velocity(list(cand.tail))
            if not 0.5 <= (frag.area + 1.0) / (cand.area + 1.0) <= 2.0:
                continue  # a different size: another person (or the same one far off)
            area = max(cfg.min_area, frag.area, cand.area) * (1.0 + cfg.search_growth * gap) ** 2
            forward = oks(end[1] + v_end * gap, start[1], area, self._sigmas)
            backward = oks(start[1] - v_start * gap, end[1], area, self._sigmas)
            sim = 0.5 * (forward + backward)
            if frag.colours is not None and cand.colours is not None and cfg.appearance > 0:
                look = float(np.sqrt(frag.colours) @ np.sqrt(cand.colours))
                sim *= 1.0 - cfg.appearance + cfg.appearance * look
            if sim >= best_sim:
                best, best_sim = cand, sim
        return best

    def _fill(self, frag: _Fragment, before: tuple, after: tuple, person: Person, key: int | None = None) -> None:
        """Interpolate ``frag``'s person into the held frames strictly between ``before``
        and ``after`` (t, xy) when the gap is short enough."""
        (t0, a), (t1, b) = before, after
        if t1 - t0 > self.config.fill_gap_s:
            return
        for held in self._held:
            if t0 < held.t < t1:
                held.filled.append((frag.key if key is None else key, _between(a, b, (held.t - t0) / (t1 - t0)),
                                    person))
                self.filled += 1

    def _forget(self, t: float) -> None:
        """Drop fragments no held frame refers to and no new fragment can continue."""
        horizon = t - self.config.lookahead_s - self.config.link_gap_s - 1.0
        for key in [k for k, f in self._frags.items() if f.tail and f.last < horizon]:
            del self._frags[key]

    # -- output -------------------------------------------------------------------------------------
    def _release(self, held: _Held) -> tuple[Frame, np.ndarray | None]:
        """The held frame with ids (and interpolated, smoothed people)."""
        people: list[Person] = []
        for person, key in zip(held.frame.people, held.keys):
            frag = self._frags.get(key) if key is not None else None
            tid = frag.id if frag is not None else None
            people.append(dataclasses.replace(person, xy=person.xy.copy(), scores=person.scores.copy(),
                                              track_id=tid))
        seen = {p.track_id for p in people if p.track_id is not None}
        for key, xy, template in held.filled:
            frag = self._frags.get(key)
            if frag is None or frag.id is None or frag.id in seen:
                continue
            seen.add(frag.id)
            people.append(Person(xy, np.zeros(len(xy)), 0.0, template.skeleton, frag.id))
        if self.smooth:
            people = self._smoothed(held, people)
        frame = dataclasses.replace(held.frame, people=people, extra={**held.frame.extra, "tracked": True})
        return frame, held.image

    def _smoothed(self, held: _Held, people: list[Person]) -> list[Person]:
        """Gaussian average of each tracked person's keypoints over past and future frames."""
        sigma = self.config.smooth_s
        reach = 3.0 * sigma
        future: dict[int, list] = {}
        for h in self._held:  # frames after ``held`` (it has left the buffer)
            if h.t - held.t > reach:
                break
            for person, key in zip(h.frame.people, h.keys):
                frag = self._frags.get(key) if key is not None else None
                if frag is not None and frag.id is not None:
                    future.setdefault(frag.id, []).append((h.t, person.xy))
            for key, xy, _ in h.filled:
                frag = self._frags.get(key)
                if frag is not None and frag.id is not None:
                    future.setdefault(frag.id, []).append((h.t, xy))
        out = []
        for person in people:
            if person.track_id is None or sigma <= 0:
                out.append(person)
                continue
            past = self._history.setdefault(person.track_id, deque())
            while past and held.t - past[0][0] > reach:
                past.popleft()
            obs = [*past, (held.t, person.xy), *future.get(person.track_id, [])]
            past.append((held.t, person.xy))
            ts = np.array([o[0] for o in obs])
            xy = np.stack([o[1] for o in obs])  # (F, K, 2)
            w = np.exp(-0.5 * ((ts - held.t) / sigma) ** 2)[:, None]
            ok = np.isfinite(xy).all(axis=-1)  # (F, K)
            wk = w * ok
            total = wk.sum(axis=0)  # (K,)
            mean = (np.where(ok[..., None], xy, 0.0) * wk[..., None]).sum(axis=0) / np.maximum(total, 1e-12)[:, None]
            smooth = np.where(person.visible[:, None], mean, np.nan)
            out.append(dataclasses.replace(person, xy=smooth))
        for tid in [i for i, d in self._history.items() if not d or held.t - d[-1][0] > reach]:
            del self._history[tid]
        return out

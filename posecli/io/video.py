"""Video files in and out: frames of a video file (upright), annotated video files (H.264, sound)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..errors import InputError, OutputError
from .atomic import _PENDING, check_writable, temp_name
from .ffmpeg import find_ffmpeg, has_audio, has_encoder, last_line, run_ffmpeg
from .outputs import stream_target, sweep_stale, utf8_clean
from .playable import unplayable, writable_fps
from .video_resume import FfmpegTail, ends_early

#: OpenCV's FFmpeg log level while posecli decodes (-8: quiet); posecli reports decoding
#: problems itself. An OPENCV_FFMPEG_LOGLEVEL already in the environment (e.g. 32) wins.
FFMPEG_LOG_LEVEL = "-8"


def quiet_ffmpeg() -> None:
    """Keep FFmpeg's own log lines off stderr (see :data:`FFMPEG_LOG_LEVEL`)."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", FFMPEG_LOG_LEVEL)
from .paths import check_file


@contextlib.contextmanager
def opencv_path(path: Path, directory: bool = False):
    """A name for ``path`` that OpenCV accepts: the path itself, or where it is not valid
    UTF-8 (OpenCV crashes on such names) ``/proc/self/fd/N`` of a descriptor opened here,
    else a temporary symbolic link with an ASCII name. ``directory``: ``path`` is a folder
    (the name is then one to create files in)."""
    text = str(path)
    if utf8_clean(text):
        yield text
        return
    try:
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    except OSError as exc:
        raise InputError(f"cannot open ({exc.strerror})", path=path) from None
    try:
        if os.path.isdir("/proc/self/fd"):
            yield f"/proc/self/fd/{fd}"
            return
    finally:
        os.close(fd)
    with tempfile.TemporaryDirectory(prefix="posecli-") as tmp:  # no /proc: a link with a plain name
        link = os.path.join(tmp, "dir" if directory else "input" + path.suffix.encode("ascii", "ignore").decode())
        os.symlink(os.path.abspath(path), link)
        yield link


class VideoSource:
    """Frames of one video file, from ``start`` to ``end`` seconds, every ``step``-th frame.

    The file is opened once here to check it and read its properties (an empty or
    unreadable file raises :class:`InputError`); each iteration opens its own capture and
    releases it in ``finally``. Iterating yields ``(index, timestamp_s, frame)`` with
    ``index`` the frame number in the whole video and ``frame`` (H, W, 3) uint8 BGR.

    Timestamps are the container's presentation times (variable frame rates keep each
    frame's own time); ``end`` compares against them, ``start`` seeks to frame
    ``round(start * fps)`` (the average rate).

    A truncated or corrupt video yields every frame it can decode, then stops without
    raising: ``stopped_early`` is True and ``error`` says where (check them after the loop).

    Frames come upright: a rotation in the container (phone videos) is applied, and
    ``size_wh`` is the upright size; ``rotation`` says by how much (degrees clockwise).

    ``decode_threads``: FFmpeg's decoding threads (None: its own choice, every core). One
    thread spends less CPU time per frame (no hand-over between threads); worth it where
    the cores are busy with the network anyway (see :func:`decode_threads_for`).
    """

    decode_threads: int | None = None

    def __init__(self, path: str | Path, start: float | None = None, end: float | None = None, step: int = 1,
                 *, first_frame: int | None = None, stop_frame: int | None = None):
        """``first_frame``/``stop_frame``: frames ``[first_frame, stop_frame)`` by index
        instead of ``start``/``end`` seconds (cutting a video into exact ranges)."""
        self.path = check_file(path)
        if first_frame is not None and first_frame < 0 or stop_frame is not None and stop_frame < 1:
            raise InputError(f"bad frame range [{first_frame}, {stop_frame})")
        if step < 1:
            raise InputError(f"step must be at least 1, got {step}")
        if start is not None and start < 0:
            raise InputError(f"start must be >= 0 seconds, got {start}")
        if end is not None and end <= (start or 0.0):
            raise InputError(f"end ({end} s) must be after start ({start or 0.0} s)")
        self.step = int(step)
        with opencv_path(self.path) as name:
            fps, count, first = self._probe(name)
        self.fps = fps if fps > 0 and np.isfinite(fps) else 0.0
        self.frame_count = max(count, 0)  # as the container says; 0 when unknown
        self.size_wh = (int(first.shape[1]), int(first.shape[0]))
        self.start_frame = int(round(start * self._rate)) if start else 0
        self.end = end  # frames from this time on are left out (by each frame's own time)
        self.end_frame = int(round(end * self._rate)) if end is not None else None  # for the count
        self.stop_frame = stop_frame  # frames from this index on are left out
        if first_frame is not None:
            self.start_frame = int(first_frame)
        if stop_frame is not None:
            self.end_frame = int(stop_frame) if self.end_frame is None else min(self.end_frame, int(stop_frame))
        if self.frame_count and self.start_frame >= self.frame_count and start and start < self.duration:
            self.start_frame = self.frame_count - 1  # inside the last frame (round() went past it)
        if self.frame_count and self.start_frame >= self.frame_count:
            raise InputError(f"start {start} s is past the end of the video ({self.duration:.2f} s)", path=self.path)
        self.stopped_early = False
        self.error: str | None = None
        self.frames_read = 0
        self.last_index: int | None = None

    def _probe(self, name: str) -> tuple[float, int, np.ndarray]:
        """Frame rate, frame count and first frame, from one short-lived capture."""
        cap = _open_capture(name)
        try:
            if not cap.isOpened():
                raise InputError("not a readable video (corrupt or unsupported format)", path=self.path)
            self.rotation = _rotation(cap)
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            ok, first = cap.read()
            if not ok or first is None or first.size == 0:
                raise InputError("video has no decodable frames", path=self.path)
        finally:
            cap.release()
        return fps, count, first

    @property
    def _rate(self) -> float:
        return self.fps or 25.0

    @property
    def duration(self) -> float:
        """Length in seconds according to the container (0 when unknown)."""
        return self.frame_count / self._rate if self.frame_count else 0.0

    @property
    def expected_frames(self) -> int | None:
        """How many frames iteration should yield (None when the frame count is unknown)."""
        stop = self.frame_count or None
        if self.end_frame is not None:
            stop = self.end_frame if stop is None else min(stop, self.end_frame)
        if stop is None:
            return None
        return max(0, -(-(stop - self.start_frame) // self.step))

    def info(self) -> dict:
        """Plain description for result headers (``rotation`` only for a rotated video)."""
        info = {"file": str(self.path), "width": self.size_wh[0], "height": self.size_wh[1],
                "fps": round(self.fps, 4), "frame_count": self.frame_count}
        if self.rotation:
            info["rotation"] = self.rotation
        return info

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        self.stopped_early = False
        self.error = None
        self.frames_read = 0
        self.last_index = None
        with opencv_path(self.path) as name:
            yield from self._frames(_open_capture(name, self.decode_threads))

    def _frames(self, cap) -> Iterator[tuple[int, float, np.ndarray]]:
        try:
            if not cap.isOpened():
                raise InputError("not a readable video (corrupt or unsupported format)", path=self.path)
            index = self._seek(cap, self.start_frame)
            last_t: float | None = None  # time of the last frame decoded
            resumed = False
            while True:
                wanted = (index - self.start_frame) % self.step == 0
                if wanted:
                    ok, frame = cap.read()
                    ok = ok and frame is not None
                else:
                    ok = cap.grab()  # decode only, no conversion: a frame we skip
                if not ok:
                    if not resumed and self._ends_early(index, last_t):  # damage in the middle?
                        resumed = True
                        tail = FfmpegTail.start(self.path, index, self._rate, self.size_wh)
                        if tail is not None:  # FFmpeg goes on past it: the same frame again
                            cap.release()
                            cap = tail
                            continue
                    self._check_end(index, last_t)
                    return
                if self.stop_frame is not None and index >= self.stop_frame:
                    return
                t = last_t = self._timestamp(cap, index)
                if self.end is not None and t >= self.end - 1e-6:
                    return
                if wanted:
                    self.frames_read += 1
                    self.last_index = index
                    yield index, t, frame
                index += 1
        finally:
            cap.release()

    def _timestamp(self, cap, index: int) -> float:
        """Seconds of the frame just read: the container's own time (right for variable
        frame rates), else ``index / fps``."""
        ms = cap.get(cv2.CAP_PROP_POS_MSEC)
        if np.isfinite(ms) and ms >= 0 and (ms > 0 or index == 0):
            return ms / 1000.0
        return index / self._rate

    def _seek(self, cap, target: int) -> int:
        """Move ``cap`` to frame ``target``; returns the index of the next frame read."""
        if target <= 0:
            return 0
        if cap.set(cv2.CAP_PROP_POS_FRAMES, target) and int(cap.get(cv2.CAP_PROP_POS_FRAMES)) == target:
            return target
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        for i in range(target):  # seeking unsupported: decode our way there
            if not cap.grab():
                return i  # the next read fails too and records where it stopped
        return target

    def _ends_early(self, index: int, last_t: float | None) -> bool:
        """A stop before the container's end (by time: see :func:`ends_early`)."""
        stop = self.frame_count if self.end_frame is None else min(self.frame_count, self.end_frame)
        return ends_early(index, last_t, self.frame_count, stop, self._rate)

    def _check_end(self, index: int, last_t: float | None = None) -> None:
        """Record a stop before the end the container announced."""
        if self._ends_early(index, last_t):
            self.stopped_early = True
            self.error = (f"stopped at frame {index} of {self.frame_count}: "
                          f"the rest could not be decoded (truncated or corrupt)")


def _open_capture(name: str, threads: int | None = None):
    """A capture of ``name`` (see :func:`opencv_path`) that turns frames upright by the
    container's rotation (phone videos), as players do. OpenCV's FFmpeg backend does it by
    default; asked for explicitly here. ``threads``: decoding threads (None: FFmpeg's choice;
    ignored by a backend that cannot set them)."""
    cap = None
    if threads and hasattr(cv2, "CAP_PROP_N_THREADS"):
        cap = cv2.VideoCapture(name, cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, int(threads)])
        if not cap.isOpened():
            cap = None  # a backend without the property refuses it: open without
    if cap is None:
        cap = cv2.VideoCapture(name)
    if hasattr(cv2, "CAP_PROP_ORIENTATION_AUTO"):
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


#: Frames up to this many pixels (1920x1088) decode on one thread while the network runs on
#: the CPU: 1280x720 mp4v took 0.93 ms of CPU per frame on one thread vs 1.51 ms on two,
#: H.264 1.79 vs 1.94 ms, and one thread still decodes several hundred such frames a second.
#: Larger frames keep FFmpeg's threads, lest decoding become the slowest stage.
ONE_THREAD_MAX_PIXELS = 1920 * 1088


def decode_threads_for(size_wh: tuple[int, int], network_on_cpu: bool) -> int | None:
    """FFmpeg decoding threads for frames of ``size_wh`` (see :data:`ONE_THREAD_MAX_PIXELS`)."""
    if network_on_cpu and size_wh[0] * size_wh[1] <= ONE_THREAD_MAX_PIXELS:
        return 1
    return None


def _rotation(cap) -> int:
    """Degrees (clockwise: 0, 90, 180, 270) the frames are turned to be upright."""
    if not hasattr(cv2, "CAP_PROP_ORIENTATION_META"):
        return 0
    value = cap.get(cv2.CAP_PROP_ORIENTATION_META)
    return round(value) % 360 if np.isfinite(value) and value > 0 else 0


def iter_video(path: str | Path, start: float | None = None, end: float | None = None,
               step: int = 1) -> Iterator[tuple[int, float, np.ndarray]]:
    """``(index, timestamp_s, frame)`` of a video; see :class:`VideoSource`."""
    return iter(VideoSource(path, start, end, step))


_CONTAINERS = {  # extension -> FOURCC codes OpenCV tries, best first
    ".mp4": ("mp4v",), ".m4v": ("mp4v",), ".mov": ("mp4v",), ".avi": ("MJPG", "XVID"), ".mkv": ("mp4v", "MJPG"),
}
_FFMPEG_CONTAINERS = (".mp4", ".m4v", ".mov", ".mkv")  # written by FFmpeg when there is one
_MOOV_FIRST = (".mp4", ".m4v", ".mov")  # index at the start: browsers play while loading


class VideoSink:
    """An annotated video written beside ``path`` and renamed into place on :meth:`close`.

    ``.mp4``/``.m4v``/``.mov``/``.mkv``: FFmpeg (:func:`posecli.io.ffmpeg.find_ffmpeg`)
    encodes H.264 (libx264, yuv420p, so browsers play it; an odd width or height is padded
    by one black pixel); a build without libx264 gives MPEG-4 Part 2, and without FFmpeg
    OpenCV writes mp4v. ``.avi``: OpenCV's MJPG. ``note`` says what was not as asked (the
    codec, the audio), once. When OpenCV cannot write ``path``'s container, MJPG in ``.avi``
    is tried; when nothing works, :class:`OutputError`. ``path`` is the file actually written.

    Closed before any frame was written, it leaves no file (``path`` is then None).

    ``audio_from``: a media file whose first audio stream is copied into the video on
    :meth:`close` (re-encoded to AAC when the container refuses the codec), cut to the
    video's length; needs FFmpeg and an FFmpeg container. ``audio_aligned=False``: the frames
    do not line up with that sound (a part of the clip, every n-th frame): it is left out,
    with a note when there was sound. ``audio``: True once the sound was kept.
    Frames must be ``size_wh`` (others are resized).
    """

    def __init__(self, path: str | Path, fps: float, size_wh: tuple[int, int], *,
                 audio_from: str | Path | None = None, audio_aligned: bool = True, use_ffmpeg: bool = True):
        wanted = Path(path)
        ext = wanted.suffix.lower()
        if ext not in _CONTAINERS:
            raise OutputError(f"cannot write video as '{ext or 'no extension'}' (use .mp4 or .avi)", path=wanted)
        if not wanted.parent.is_dir():
            raise OutputError("output directory does not exist", path=wanted.parent)
        if stream_target(wanted):
            raise OutputError("is a device or pipe; annotated videos are written to files", path=wanted)
        check_writable(wanted)  # a read-only folder fails now, not at the second frame
        self.size_wh = (int(size_wh[0]), int(size_wh[1]))
        self.notes: list[str] = []
        self.fps = writable_fps(fps, self.notes)
        self.audio = False
        self.codec = ""
        self.frames = 0  # frames written
        self._writer = None
        self._proc: subprocess.Popen | None = None
        self._audio_from: Path | None = None
        ffmpeg = find_ffmpeg() if use_ffmpeg else None
        if ext not in _FFMPEG_CONTAINERS or ffmpeg is None or not self._open_ffmpeg(ffmpeg, wanted):
            self._open_opencv(wanted, ext, ffmpeg_missing=ext in _FFMPEG_CONTAINERS and use_ffmpeg and ffmpeg is None)
        if audio_from is not None and ffmpeg is not None and has_audio(ffmpeg, audio_from):
            if not audio_aligned:
                self.notes.append("the clip's sound is not kept: the frames written (a part of the clip, or "
                                  "every n-th frame) no longer line up with it")
            elif self._proc is None:
                self.notes.append(f"the clip's sound is not kept in {self.path.suffix} (use .mp4)")
            else:
                self._audio_from = Path(audio_from)

    @property
    def note(self) -> str | None:
        return "; ".join(self.notes) or None

    # -- opening ----------------------------------------------------------------------------------
    def _temp(self, target: Path) -> Path:
        return temp_name(target, keep_suffix=True)

    def _open_ffmpeg(self, ffmpeg: str, target: Path) -> bool:
        """Start FFmpeg reading raw BGR frames on its stdin; False when it cannot start."""
        h264 = has_encoder(ffmpeg, "libx264")
        w, h = self.size_wh
        sweep_stale(target)
        tmp = self._temp(target)
        rate = Fraction(self.fps).limit_denominator(100000)
        cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-framerate", str(rate), "-i", "pipe:0",
               "-an"]
        if w % 2 or h % 2:  # 4:2:0 chroma needs even sizes
            cmd += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
        if h264:
            cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]
        else:
            cmd += ["-c:v", "mpeg4", "-q:v", "3", "-pix_fmt", "yuv420p"]
        if target.suffix.lower() in _MOOV_FIRST:
            cmd += ["-movflags", "+faststart"]
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - FFmpeg's stderr until close()
        try:
            # its own session: Ctrl-C in a terminal reaches posecli, which then closes the video properly
            self._proc = subprocess.Popen([*cmd, str(tmp)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=self._errors, start_new_session=True)
        except OSError:
            self._errors.close()
            return False
        _PENDING.add(tmp)
        self._ffmpeg, self.path, self._tmp = ffmpeg, target, tmp
        self.codec = "h264" if h264 else "mpeg4"
        if not h264:
            self.notes.append("this FFmpeg has no H.264 encoder (libx264): wrote MPEG-4 Part 2, "
                              "which browsers may not play")
        return True

    def _open_opencv(self, wanted: Path, ext: str, ffmpeg_missing: bool) -> None:
        tries = [(code, wanted) for code in _CONTAINERS[ext]]
        if ext != ".avi":
            tries.append(("MJPG", wanted.with_suffix(".avi")))
        for code, target in tries:
            sweep_stale(target)
            tmp = temp_name(target, keep_suffix=True)
            with opencv_path(tmp.parent, directory=True) as folder:
                writer = cv2.VideoWriter(os.path.join(folder, tmp.name), cv2.VideoWriter_fourcc(*code), self.fps,
                                         self.size_wh)
            if writer.isOpened():
                _PENDING.add(tmp)
                self.path, self._tmp, self._writer, self.codec = target, tmp, writer, code
                if target != wanted:
                    self.notes.append(f"OpenCV cannot write {ext} here; wrote {target.name} ({code} in AVI) instead")
                elif ffmpeg_missing:
                    self.notes.append("no FFmpeg found (pip install 'posecli[video]'): wrote MPEG-4 Part 2 (mp4v) "
                                      "with OpenCV, which browsers do not play, and no sound")
                return
            writer.release()
            _unlink(tmp)
        raise OutputError(f"OpenCV cannot write video here (tried {', '.join(c for c, _ in tries)})", path=wanted)

    # -- writing ----------------------------------------------------------------------------------
    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size_wh:
            image = cv2.resize(image, self.size_wh, interpolation=cv2.INTER_AREA)
        if self._proc is None:
            self._writer.write(image)
            self.frames += 1
            return
        try:
            self._proc.stdin.write(np.ascontiguousarray(image[:, :, :3], dtype=np.uint8).data)
            self.frames += 1
        except OSError:  # FFmpeg went away (disk full, killed)
            self._proc.kill()
            self._proc.wait()
            problem = self._ffmpeg_errors() or "it stopped"
            self._finish_failed()
            raise OutputError(f"FFmpeg could not write the video ({problem})", path=self.path) from None

    def close(self, commit: bool = True) -> None:
        """Finish the file; rename it into place (``commit``) or delete it."""
        if not self.frames and (self._proc is not None or self._writer is not None):
            commit, self.path = False, None  # stopped before the first frame: no video, none replaced
        if self._proc is not None:
            proc, self._proc = self._proc, None
            try:
                proc.stdin.close()
            except OSError:
                pass
            code = proc.wait()
            if commit and code != 0:
                problem = self._ffmpeg_errors() or f"exit code {code}"
                self._errors.close()
                _unlink(self._tmp)
                raise OutputError(f"FFmpeg could not write the video ({problem})", path=self.path)
            self._errors.close()
            if commit and self._audio_from is not None:
                self._add_audio()
        elif self._writer is not None:
            self._writer.release()
            self._writer = None
        else:
            return
        try:
            if commit:
                problem = unplayable(self._tmp, self.frames)  # a full disk: never replace a good file
                if problem is not None:
                    _unlink(self._tmp)
                    raise OutputError(f"cannot write video: {problem}", path=self.path)
                try:
                    os.replace(self._tmp, self.path)
                except OSError as exc:
                    _unlink(self._tmp)
                    raise OutputError(f"cannot write video ({exc.strerror})", path=self.path) from None
            else:
                _unlink(self._tmp)
        finally:
            _PENDING.discard(self._tmp)

    def _add_audio(self) -> None:
        """Copy the source's sound into the finished temporary video (AAC when it must)."""
        out = self._temp(self.path)
        base = ["-y", "-i", str(self._tmp), "-i", str(self._audio_from), "-map", "0:v:0", "-map", "1:a:0",
                "-c:v", "copy", "-shortest"]
        if self.path.suffix.lower() in _MOOV_FIRST:
            base += ["-movflags", "+faststart"]
        problem = ""
        for audio in (["-c:a", "copy"], ["-c:a", "aac", "-b:a", "160k"]):
            ok, problem = run_ffmpeg(self._ffmpeg, [*base, *audio, str(out)])
            if ok:
                os.replace(out, self._tmp)
                self.audio = True
                return
            _unlink(out)
        self.notes.append(f"the sound could not be kept ({problem or 'FFmpeg failed'})")

    def _ffmpeg_errors(self) -> str:
        try:
            self._errors.seek(0)
            return last_line(self._errors.read().decode("utf-8", "replace"))
        except (OSError, ValueError):
            return ""

    def _finish_failed(self) -> None:
        self._proc = None
        self._errors.close()
        _unlink(self._tmp)
        _PENDING.discard(self._tmp)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass

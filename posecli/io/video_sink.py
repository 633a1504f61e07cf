"""Annotated video files out: H.264 through FFmpeg with the clip's sound, else what OpenCV
writes; written under a temporary name and renamed into place (:mod:`posecli.io.atomic`)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from ..errors import OutputError
from .atomic import check_writable, commit_pending, drop_pending, pending_name
from .ffmpeg import find_ffmpeg, has_audio, has_encoder, last_line, run_ffmpeg
from .outputs import stream_target
from .playable import unplayable, writable_fps
from .video import opencv_path

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

    ``audio_from``: a media file whose first audio stream is copied into the video on
    :meth:`close` (re-encoded to AAC when the container refuses the codec), cut to the
    video's length; needs FFmpeg and an FFmpeg container. ``audio_aligned=False``: the frames
    do not line up with that sound (a part of the clip, every n-th frame): it is left out,
    with a note when there was sound. ``audio``: True once the sound was kept.
    Frames must be ``size_wh`` (others are resized). The finished file is read back before it
    is renamed into place (:mod:`posecli.io.playable`: a full disk never replaces a good
    video with a broken one); closed before any frame was written, it leaves no file
    (``path`` is then None).
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
    def _open_ffmpeg(self, ffmpeg: str, target: Path) -> bool:
        """Start FFmpeg reading raw BGR frames on its stdin; False when it cannot start."""
        h264 = has_encoder(ffmpeg, "libx264")
        w, h = self.size_wh
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
        tmp = pending_name(target, keep_suffix=True)
        try:
            # its own session: Ctrl-C in a terminal reaches posecli, which then closes the video properly
            self._proc = subprocess.Popen([*cmd, str(tmp)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=self._errors, start_new_session=True)
        except OSError:
            self._errors.close()
            drop_pending(tmp)
            return False
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
            tmp = pending_name(target, keep_suffix=True)
            with opencv_path(tmp.parent, directory=True) as folder:
                writer = cv2.VideoWriter(os.path.join(folder, tmp.name), cv2.VideoWriter_fourcc(*code), self.fps,
                                         self.size_wh)
            if writer.isOpened():
                self.path, self._tmp, self._writer, self.codec = target, tmp, writer, code
                if target != wanted:
                    self.notes.append(f"OpenCV cannot write {ext} here; wrote {target.name} ({code} in AVI) instead")
                elif ffmpeg_missing:
                    self.notes.append("no FFmpeg found (pip install 'posecli[video]'): wrote MPEG-4 Part 2 (mp4v) "
                                      "with OpenCV, which browsers do not play, and no sound")
                return
            writer.release()
            drop_pending(tmp)
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
                drop_pending(self._tmp)
                raise OutputError(f"FFmpeg could not write the video ({problem})", path=self.path)
            self._errors.close()
            if commit and self._audio_from is not None:
                self._add_audio()
        elif self._writer is not None:
            self._writer.release()
            self._writer = None
        else:
            return
        problem = unplayable(self._tmp, self.frames) if commit else None  # a full disk: never replace a good file
        if problem is not None:
            drop_pending(self._tmp)
            raise OutputError(f"cannot write video: {problem}", path=self.path)
        if commit:
            commit_pending(self._tmp, self.path, "video")
        else:
            drop_pending(self._tmp)

    def _add_audio(self) -> None:
        """Copy the source's sound into the finished temporary video (AAC when it must)."""
        out = pending_name(self.path, keep_suffix=True)
        base = ["-y", "-i", str(self._tmp), "-i", str(self._audio_from), "-map", "0:v:0", "-map", "1:a:0",
                "-c:v", "copy", "-shortest"]
        if self.path.suffix.lower() in _MOOV_FIRST:
            base += ["-movflags", "+faststart"]
        problem = ""
        for audio in (["-c:a", "copy"], ["-c:a", "aac", "-b:a", "160k"]):
            ok, problem = run_ffmpeg(self._ffmpeg, [*base, *audio, str(out)])
            if ok:
                commit_pending(out, self._tmp, "video")
                self.audio = True
                return
        drop_pending(out)
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
        drop_pending(self._tmp)

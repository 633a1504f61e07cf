"""The FFmpeg program, for what OpenCV's wheels cannot do: H.264 and audio in rendered videos.

Found in this order: ``$POSECLI_FFMPEG``, the binary shipped by the ``imageio-ffmpeg``
package (``pip install 'posecli[video]'``: a static FFmpeg with libx264 on every platform),
``ffmpeg`` on the PATH. None of them is required: without FFmpeg, videos are written by
OpenCV as MPEG-4 Part 2 without sound, and the CLI says so.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

_PROBE_TIMEOUT_S = 30


@functools.lru_cache(maxsize=4)
def _find(env: str | None) -> str | None:
    if env:
        return env if Path(env).is_file() and os.access(env, os.X_OK) else None
    exe = None
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001 - not installed, or its binary missing for this platform
        exe = None
    return exe if exe and Path(exe).is_file() else shutil.which("ffmpeg")


def find_ffmpeg() -> str | None:
    """Path of an FFmpeg executable, or None (see the module docstring)."""
    return _find(os.environ.get("POSECLI_FFMPEG") or None)


@functools.lru_cache(maxsize=8)
def has_encoder(ffmpeg: str, name: str) -> bool:
    """Whether this FFmpeg build has the encoder ``name`` (e.g. ``libx264``)."""
    try:
        out = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True, errors="replace",
                             timeout=_PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return re.search(rf"^\s*\S+\s+{re.escape(name)}\s", out.stdout, re.MULTILINE) is not None


def has_audio(ffmpeg: str, path: str | Path) -> bool:
    """Whether the media file at ``path`` has an audio stream (read from FFmpeg's stream list)."""
    try:
        out = subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True,
                             text=True, errors="replace", timeout=_PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return re.search(r"Stream #\d+:\d+.*: Audio:", out.stderr) is not None


def run_ffmpeg(ffmpeg: str, args: list[str], timeout: float | None = None) -> tuple[bool, str]:
    """Run FFmpeg quietly in its own session (Ctrl-C in a terminal does not reach it);
    ``(ok, last lines of its errors)``."""
    try:
        out = subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", *args],
                             capture_output=True, text=True, errors="replace", timeout=timeout, check=False,
                             start_new_session=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, str(exc)
    return out.returncode == 0, last_line(out.stderr)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""

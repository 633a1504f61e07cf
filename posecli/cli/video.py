"""``posecli video``: people in every frame of a clip, with ids, as streamed JSON and video."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import PoseError
from .common import (
    FORMAT_CHOICE,
    Terminated,
    build_estimator,
    default_batch_size,
    estimator_options,
    fail,
    interrupted_exit,
    progress_bar,
    quiet_ffmpeg,
    safe_interrupts,
    say,
)

EPILOG = """\b
Examples:
  posecli video clip.mp4 --out poses.json                      # ids on, progress bar
  posecli video clip.mp4 --out poses.json --render clip_pose.mp4 --smooth
  posecli video clip.mp4 --format openpose --out poses/        # clip_000000000000_keypoints.json ...
  posecli video clip.mp4 --start 10 --end 20 --step 2 --height 192
  posecli video clip.mp4 --out poses.json --track offline --smooth   # look ahead: join, fill, no lag
  posecli video clip.mp4 --out poses.json -T max_gap_s=2 -T confirm_s=0.2
"""


def parse_tracker_options(values: tuple[str, ...]):
    """``-T key=value`` pairs -> a TrackerConfig (click errors name the pair)."""
    from dataclasses import fields

    from ..video.track import TrackerConfig

    known = {f.name for f in fields(TrackerConfig)}
    out: dict = {}
    for item in values:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in known:
            raise click.BadParameter(f"'{item}': expected KEY=VALUE with KEY one of: {', '.join(sorted(known))}",
                                     param_hint="-T")
        default = getattr(TrackerConfig(), key)
        try:
            if key == "max_age":
                out[key] = None if raw.strip().lower() in ("", "none") else int(raw)
            else:
                out[key] = type(default)(raw)
        except ValueError:
            raise click.BadParameter(f"'{item}': {raw!r} is not a valid {type(default).__name__}",
                                     param_hint="-T") from None
    try:
        return TrackerConfig(**out)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="-T") from None

@click.command("video", epilog=EPILOG)
@click.argument("clip", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="JSON file (streamed), or a folder (--format openpose: one file per frame) [default: stdout].")
@click.option("--render", "-r", type=click.Path(path_type=Path), default=None,
              help="Annotated video (.mp4 or .avi), same size and frame rate as the clip (a N-th of it with --step N).")
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="posecli", show_default=True,
              help="posecli (named keypoints), openpose (CMU 1.3 JSON per frame) or coco (keypoint results).")
@click.option("--start", type=click.FloatRange(min=0), default=None, metavar="S", help="Start at S seconds.")
@click.option("--end", type=click.FloatRange(min=0), default=None, metavar="S", help="Stop before S seconds.")
@click.option("--step", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="Process every N-th frame.")
@click.option("--track", type=click.Choice(["online", "offline"]), default="online", show_default=True,
              is_flag=False, flag_value="online",
              help="Person ids across frames: online (as frames come), or offline (looks "
                   "ahead: joins fragments of one person, fills short gaps; files only).")
@click.option("--no-track", is_flag=True, help="No person ids.")
@click.option("--tracker-option", "-T", "tracker_options", multiple=True, metavar="KEY=VALUE",
              help="A tracking setting (TrackerConfig field, times in seconds), e.g. -T max_gap_s=2.")
@click.option("--smooth", is_flag=True,
              help="Smooth each tracked person's keypoints: One-Euro online, zero-phase offline.")
@click.option("--batch-size", type=click.IntRange(1, 256), default=None, metavar="N",
              help="Frames per network run (larger helps on GPUs) [default: 1 on the CPU, 4 on a GPU].")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or notes.")
@estimator_options
def video_command(clip, out, render, fmt, start, end, step, track, no_track, tracker_options, smooth, batch_size,
                  quiet, **est_opts):
    """Find people in every frame of CLIP and follow them.

    Frames carry their index and time in seconds; people carry an "id" that stays the
    same across frames once their track is confirmed ("id": null before; --no-track to
    leave ids out). Ctrl-C keeps the frames done so far:
    the JSON stays valid, marked "complete": false (exit 130).
    """
    from ..video.run import VideoOptions, VideoRun
    from ..video.smooth import OneEuroConfig

    quiet_ffmpeg()
    tracker_config = parse_tracker_options(tracker_options)
    if no_track and (track == "offline" or tracker_options):
        raise click.UsageError("--no-track turns tracking off: drop --track offline and -T")
    if smooth and no_track:
        raise click.UsageError("--smooth follows tracked people: drop --no-track")
    if end is not None and start is not None and end <= start:
        raise click.BadParameter(f"{end} is not after --start {start}", param_hint="--end")
    if fmt == "openpose":
        if out is None:
            raise click.UsageError("--format openpose writes one file per frame: give --out a folder")
        if out.suffix.lower() == ".json":
            raise click.UsageError("--format openpose writes one file per frame: give --out a folder, not a .json")
    elif out is not None and (out.is_dir() or str(out).endswith(("/", "\\"))):
        out = out / f"{clip.stem}.json"

    with safe_interrupts() as interrupts:  # Ctrl-C and SIGTERM stop between frames
        try:
            est = build_estimator(**est_opts)
            options = VideoOptions(fmt=fmt, start=start, end=end, step=step, track=not no_track,
                                   smooth=OneEuroConfig() if smooth else None, tracker=tracker_config,
                                   offline=track == "offline",
                                   batch_size=batch_size or default_batch_size(est))
            job = VideoRun(est, clip, out, options=options, render=render, keep_partial=True)
        except PoseError as exc:
            raise fail(exc) from None
        except KeyboardInterrupt as exc:
            say("Interrupted before the first frame; nothing written.")
            raise interrupted_exit(exc) from None
        bar = None
        try:
            if job.render_note:
                say(f"Note: {job.render_note}", quiet=quiet)
            bar = progress_bar(job.expected, quiet, desc=clip.name)
            job.run(progress=lambda n: (bar.update(n), interrupts.check()))
        except PoseError as exc:
            job.abort()
            if bar is not None:
                bar.close()
            raise fail(exc) from None
        except KeyboardInterrupt as exc:
            job.abort()  # closes the JSON valid, marked incomplete, if run() did not get to it
            if bar is not None:
                bar.close()
            what = "Terminated" if isinstance(exc, Terminated) else "Interrupted"
            where = f" to {out}" if out is not None else ""
            marked = ' (marked "complete": false)' if fmt == "posecli" else ""
            say(f"{what}: {job.frames_done} frames written{where}{marked}.")
            raise interrupted_exit(exc) from None
        bar.close()
    if job.stopped_early:
        say(f"Warning: {clip}: {job.error}; the {job.frames_done} decoded frames were processed.")
    if job.render_path is not None:
        say(f"annotated video: {job.render_path}", quiet=quiet)

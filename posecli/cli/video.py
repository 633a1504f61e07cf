"""``posecli video``: people in every frame of a clip, camera, stream or folder of frames, with ids,
as streamed JSON and video; live sources in real time, optionally in a window."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..errors import OutputConflict, PoseError, shown_path
from ..formats.records import result_suffix
from ..io.atomic import check_writable
from ..io.outputs import check_distinct
from ..io.video import quiet_ffmpeg
from .common import (
    FORMAT_CHOICE,
    VERBOSE_HELP,
    FiniteFloat,
    Terminated,
    batch_size_help,
    build_estimator,
    describe_done,
    describe_setup,
    estimator_kwargs,
    estimator_options,
    fail,
    interrupted_exit,
    mode_option,
    progress_bar,
    report_error,
    safe_interrupts,
    say,
)
from .outputs import build_renderer, maps_option, people_kwargs, people_options, render_style_options


def quiet_opencv() -> None:
    """OpenCV's own warnings (a stream's read timeout) off stderr: posecli reports what matters."""
    import cv2

    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is not None:
        logging.setLogLevel(logging.LOG_LEVEL_ERROR)

MAX_SECONDS = 1e7  # about 115 days: --start/--end past this are typing mistakes

EPILOG = """\b
Examples:
  posecli video clip.mp4 --out poses.json                      # ids on, progress bar
  posecli video clip.mp4 --out poses.json --render clip_pose.mp4 --smooth
  posecli video clip.mp4 --format openpose --out poses/        # clip_000000000000_keypoints.json ...
  posecli video clip.mp4 --start 10 --end 20 --step 2 --height 192
  posecli video clip.mp4 --format csv --out poses.csv         # a row per frame, person and keypoint
  posecli video dance.mp4 --follow largest --render solo.mp4  # one dancer; H.264 with the clip's sound
  posecli video clip.mp4 --follow 3 --max-people 4            # track id 3 only
  posecli video clip.mp4 --render skel.mp4 --background black --min-score 0.3 --boxes
  posecli video clip.mp4 --write-maps maps/ --end 5           # maps/clip_000000000000.npz ...
  posecli video clip.mp4 --out poses.json --track offline --smooth   # look ahead: join, fill, no lag
  posecli video clip.mp4 --out poses.json -T max_gap_s=2 -T confirm_s=0.2
  posecli video 0 --show --out cam.json                        # camera 0, window, q or Esc stops
  posecli video rtsp://192.168.1.20:554/stream --duration 60 --out cctv.json
  posecli video udp://127.0.0.1:5000 --max-frames 500 --reconnect 10
  posecli video frames/ --fps 30 --out poses.json              # frame_2.png before frame_10.png
  posecli video 'shots/*.jpg' --render shots.mp4
  posecli video clip.mp4 --realtime --show                     # a clip played as if it were a camera

\b
SOURCE: a video file; a camera (0, 1, /dev/video0); a stream URL (rtsp, rtmp, http(s), udp,
tcp; e.g. MPEG-TS or MJPEG); a folder of frames or a quoted glob. Cameras and streams run
in real time: the network always takes the newest frame, frames that arrive meanwhile are
dropped (counted in "skipped"), and each frame records "capture_time" and "latency".
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
@click.argument("source")
@click.option("--out", "-o", type=click.Path(), default=None,
              help="JSON file (streamed), or a folder (--format openpose: one file per frame) [default: stdout].")
@click.option("--render", "-r", type=click.Path(path_type=Path), default=None,
              help="Annotated video (.mp4 or .avi), same size and frame rate as the clip (a N-th of it with --step N); "
                   "H.264 with the clip's sound when FFmpeg is there (see README).")
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="posecli", show_default=True,
              help="posecli (named keypoints), openpose (CMU 1.3 JSON per frame), coco (keypoint results) "
                   "or csv (a row per frame, person and keypoint).")
@click.option("--start", type=FiniteFloat(min=0, max=MAX_SECONDS), default=None, metavar="S",
              help="Start at S seconds.")
@click.option("--end", type=FiniteFloat(min=0, max=MAX_SECONDS), default=None, metavar="S",
              help="Stop before S seconds.")
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
              help=batch_size_help("Frames per network run (larger helps on GPUs)"))
@click.option("--follow", default=None, metavar="largest|center|ID",
              help="Keep one person: the largest, the one nearest the centre (chosen again when lost) "
                   "or a track id.")
@click.option("--realtime/--no-realtime", default=None,
              help="Newest frame only, dropping frames while the network is busy "
                   "[default: on for cameras and streams, off for files and folders].")
@click.option("--fps", type=FiniteFloat(min=0, max=1000, min_open=True), default=None,
              help="Frame rate of a folder of frames [default: 25].")
@click.option("--duration", type=FiniteFloat(min=0, max=1e9, min_open=True), default=None, metavar="S",
              help="Stop after S seconds (of the source's time; wall time for live sources).")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, metavar="N", help="Stop after N frames.")
@click.option("--reconnect", type=click.IntRange(min=0, max=1000), default=3, show_default=True, metavar="N",
              help="Reconnection attempts when a camera or stream drops (waits 0.5, 1, 2.. s).")
@click.option("--timeout", "timeout_s", type=FiniteFloat(min=0, max=3600, min_open=True), default=10.0,
              show_default=True, metavar="S", help="Longest wait for a camera or stream to open or send a frame.")
@click.option("--show", is_flag=True, help="Show the skeletons in a window (q or Esc stops).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or notes.")
@click.option("--verbose", "-v", is_flag=True, help=VERBOSE_HELP)
@people_options
@render_style_options
@maps_option
@estimator_options
@mode_option("fast")
def video_command(source, out, render, fmt, start, end, step, track, no_track, tracker_options, smooth, batch_size,
                  follow, realtime, fps, duration, max_frames, reconnect, timeout_s, show, quiet, verbose, max_people,
                  part_candidates, background, thickness, radius, min_score, show_ids, show_boxes, maps_dir,
                  **est_opts):
    """Find people in every frame of SOURCE and follow them.

    Frames carry their index and time in seconds; people carry an "id" that stays the
    same across frames once their track is confirmed ("id": null before; --no-track to
    leave ids out). Ctrl-C keeps the frames done so far:
    the JSON stays valid, marked "complete": false (exit 130).
    """
    from ..errors import InputError
    from ..io.sources import parse_source
    from ..video.follow import parse_follow
    from ..video.run import VideoOptions, VideoRun
    from ..video.smooth import OneEuroConfig

    quiet_ffmpeg()
    quiet_opencv()
    try:
        spec = parse_source(source)
    except InputError as exc:
        raise fail(exc) from None
    if fps is not None and spec.kind != "frames":
        raise click.BadParameter("is for folders of frames (videos, cameras and streams have their own rate)",
                                 param_hint="--fps")
    if spec.live and (start is not None or end is not None or step != 1):
        raise click.UsageError("--start, --end and --step select parts of files: "
                               "stop a camera or stream with --duration or --max-frames")
    tracker_config = parse_tracker_options(tracker_options)
    if no_track and (track == "offline" or tracker_options):
        raise click.UsageError("--no-track turns tracking off: drop --track offline and -T")
    if spec.live and track == "offline":
        raise click.UsageError("--track offline looks ahead, which a camera or stream cannot: use --track online")
    if smooth and no_track:
        raise click.UsageError("--smooth follows tracked people: drop --no-track")
    if follow is not None:
        if no_track:
            raise click.UsageError("--follow uses tracking: drop --no-track")
        try:
            follow = parse_follow(follow)
        except PoseError as exc:
            raise click.BadParameter(exc.message.replace("follow=", ""), param_hint="--follow") from None
    renderer = build_renderer(background, thickness, radius, min_score, show_ids, show_boxes)
    if end is not None and start is not None and end <= start:
        raise click.BadParameter(f"{end} is not after --start {start}", param_hint="--end")
    estimator_kwargs(**est_opts)  # every option checked before any work
    # A string first: a trailing slash ("--out poses/") asks for a folder, and Path drops it.
    out_is_dir = out is not None and (out.endswith(("/", "\\")) or Path(out).is_dir())
    out = None if out is None else Path(out)
    if fmt == "openpose":
        if out is None:
            raise click.UsageError("--format openpose writes one file per frame: give --out a folder")
        if out.suffix.lower() == ".json":
            raise click.UsageError("--format openpose writes one file per frame: give --out a folder, not a .json")
        if out.exists() and not out.is_dir():
            raise click.UsageError(f"--format openpose writes one file per frame: {shown_path(out)} is a file, "
                                   "give --out a folder")
    elif out_is_dir:
        out = out / (spec.stem + result_suffix(fmt))
    try:
        inputs = [Path(source)] if spec.kind == "file" else []
        check_distinct(inputs, [("--out", out), ("--render", render)])
        if out is not None and out_is_dir and fmt != "openpose":
            check_writable(out.parent, is_dir=True)  # "--out poses/": the folder is made
        if out is not None:
            check_writable(out, is_dir=fmt == "openpose")
    except OutputConflict as exc:
        raise click.UsageError(str(exc)) from None
    except PoseError as exc:
        raise fail(exc) from None
    window = None
    if show:
        from ..video.window import Window

        try:
            window = Window(title=f"posecli: {spec.text}")
        except PoseError as exc:
            raise click.ClickException(str(exc).replace("show=True", "--show")) from None

    with safe_interrupts() as interrupts:  # Ctrl-C and SIGTERM stop between frames
        try:
            est = build_estimator(people_kwargs(max_people, part_candidates, keep_maps=maps_dir is not None),
                                  **est_opts)
            options = VideoOptions(fmt=fmt, start=start, end=end, step=step, track=not no_track,
                                   smooth=OneEuroConfig() if smooth else None, tracker=tracker_config,
                                   offline=track == "offline",
                                   batch_size=batch_size or est.model.default_batch_size, follow=follow,
                                   renderer=renderer, realtime=realtime, fps=fps, duration=duration,
                                   max_frames=max_frames, reconnect=reconnect, timeout_s=timeout_s)
            job = VideoRun(est, spec, out, options=options, render=render, keep_partial=True, maps_dir=maps_dir,
                           on_note=lambda line: say(f"Note: {line}", quiet=quiet), window=window)
        except PoseError as exc:
            if window is not None:
                window.close()
            raise fail(exc) from None
        except KeyboardInterrupt as exc:
            if window is not None:
                window.close()
            say("Interrupted before the first frame; nothing written.")
            raise interrupted_exit(exc) from None
        bar = None
        noted = job.render_note
        try:
            if noted:
                say(f"Note: {noted}", quiet=quiet)
            if job.live and not job.realtime:
                say("Note: --no-realtime on a live source: frames queue up when the network is slower "
                    "than the source, and latency grows.", quiet=quiet)
            if maps_dir is not None:
                _warn_maps_size(est, job)
            if verbose:
                for line in describe_setup(est):
                    say(line)
            bar = progress_bar(job.expected, quiet, desc=Path(source).name if spec.kind == "file" else spec.stem)
            started = time.monotonic()
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
        finally:
            if window is not None:
                window.close()
        bar.close()
    if verbose:
        for line in describe_done(est, job.frames_done, "frames", started):
            say(line)
    if job.stopped_early:
        kind = "received" if job.live else "decoded"
        say(f"Warning: {spec.text}: {job.error}; the {job.frames_done} {kind} frames were processed.")
    if job.realtime:
        say(f"{job.frames_done} frames processed, {job.dropped} dropped (real time).", quiet=quiet)
    if job.render_note and job.render_note != noted:  # learnt while closing (the sound)
        say(f"Note: {job.render_note}", quiet=quiet)
    if job.render_path is not None:
        say(f"annotated video: {job.render_path}", quiet=quiet)
    for path, message in job.unreadable:
        report_error(InputError(message, path=path))
    if job.unreadable:
        raise click.exceptions.Exit(1)


def _warn_maps_size(est, job) -> None:
    """Say when --write-maps will write more than MAPS_WARN_BYTES_PER_MINUTE per minute."""
    from ..formats.maps import MAPS_WARN_BYTES_PER_MINUTE, maps_bytes_per_frame

    per_frame = maps_bytes_per_frame(est, job.source.size_wh)
    per_minute = per_frame * (getattr(job.source, "fps", None) or 25.0) / job.options.step * 60
    if per_minute > MAPS_WARN_BYTES_PER_MINUTE:
        say(f"Warning: --write-maps writes about {per_minute / 1e9:.1f} GB per minute of video "
            f"({per_frame / 1e6:.2f} MB per frame); --step N or a lower --height writes less.")

"""``posecli video``: people in every frame of a clip, camera, stream or folder of frames, with ids,
as streamed JSON and video; live sources in real time, optionally in a window."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..errors import InputError, shown_path
from ..io.video import quiet_ffmpeg
from ..video.job import VideoReport
from .common import (
    CommandReport,
    FORMAT_CHOICE,
    VERBOSE_HELP,
    VIDEO_MODE,
    FiniteFloat,
    batch_size_help,
    describe_done,
    describe_setup,
    estimator_settings,
    mode_option,
    parse_key_values,
    progress_bar,
    report_error,
    safe_interrupts,
    say,
    usage_errors,
)
from .outputs import (
    angles_option,
    build_renderer,
    check_format_options,
    layout_option,
    pose_options,
)


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
  posecli video clip.mp4 --format csv --angles --out a.csv    # and Sports2D's joint/segment angles
  posecli video clip.mp4 --trc trc/ --out poses.json          # trc/clip_px_person01.trc ... (Sports2D)
  posecli video clip.mp4 --format openpose --layout body25 --out poses/   # BODY_25 order (pose-format)
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
  posecli video clip.mp4 --mode fastest -v                     # network on one frame in 5: docs/realtime.md

\b
SOURCE: a video file; a camera (0, 1, /dev/video0); a stream URL (rtsp, rtmp, http(s), udp,
tcp; e.g. MPEG-TS or MJPEG); a folder of frames or a quoted glob. Cameras and streams run
in real time: the network always takes the newest frame, frames that arrive meanwhile are
dropped (counted in "skipped"), and each frame records "capture_time" and "latency"; they
run --mode fastest unless told otherwise (the network on whole frames now and then, people
carried by optical flow between: fewer frames dropped).
"""


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
@layout_option
@angles_option
@click.option("--trc", "trc_dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Also write a pixel TRC per tracked person, DIR/<clip>_px_person<ID>.trc, as Sports2D reads "
                   "it (its load_trc_px): every frame, markers RShoulder, Hip... in pixels, y down.")
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
@pose_options
@mode_option(VIDEO_MODE, live="fastest")
def video_command(source, out, render, fmt, layout, angles, trc_dir, start, end, step, track, no_track, tracker_options,
                  smooth, batch_size,
                  follow, realtime, fps, duration, max_frames, reconnect, timeout_s, show, quiet, verbose, max_people,
                  part_candidates, background, thickness, radius, min_score, show_ids, show_boxes, maps_dir,
                  **est_opts):
    """Find people in every frame of SOURCE and follow them.

    Frames carry their index and time in seconds; people carry an "id" that stays the
    same across frames once their track is confirmed ("id": null before; --no-track to
    leave ids out). Ctrl-C keeps the frames done so far:
    the JSON stays valid, marked "complete": false (exit 130).
    """
    from ..video.job import VideoJob, run_video
    from ..video.run import VideoOptions
    from ..video.track import TrackerConfig

    quiet_ffmpeg()
    quiet_opencv()
    tracker = parse_key_values(tracker_options, TrackerConfig, "-T")
    check_format_options(fmt, layout, angles)
    estimator = estimator_settings(max_people=max_people, part_candidates=part_candidates, **est_opts)
    renderer = build_renderer(background, thickness, radius, min_score, show_ids, show_boxes)
    with usage_errors():
        options = VideoOptions(fmt=fmt, layout=layout, angles=angles, start=start, end=end, step=step,
                               track=not no_track,
                               offline=track == "offline", smooth=smooth, tracker=TrackerConfig(**tracker),
                               batch_size=batch_size, follow=follow, renderer=renderer, realtime=realtime, fps=fps,
                               duration=duration, max_frames=max_frames, reconnect=reconnect, timeout_s=timeout_s)
        job = VideoJob(source, estimator, options, out=out, render=render, maps_dir=maps_dir, show=show,
                       trc_dir=trc_dir)
    with safe_interrupts() as interrupts, VideoReporter(job, quiet, verbose, interrupts) as report:
        run = run_video(job, report)
    report.finished(run)


class VideoReporter(CommandReport, VideoReport):
    """What ``posecli video`` says while a job runs: notes, a progress bar, ``--verbose``
    lines, and at the end what was written; Ctrl-C and library errors as exit codes."""

    def __init__(self, job, quiet: bool, verbose: bool, interrupts) -> None:
        self.job, self.quiet, self.verbose, self.interrupts = job, quiet, verbose, interrupts
        self.run = self.bar = self.estimator = None
        self.noted = None
        self.clock = time.monotonic()

    def note(self, line: str) -> None:
        say(f"Note: {line}", quiet=self.quiet)

    def started(self, estimator, run) -> None:
        self.estimator, self.run, self.noted = estimator, run, run.render_note
        if self.noted:
            self.note(self.noted)
        if run.live and not run.realtime:
            self.note("--no-realtime on a live source: frames queue up when the network is slower "
                      "than the source, and latency grows.")
        if self.job.maps_dir is not None:
            _warn_maps_size(estimator, run)
        if self.verbose:
            for line in describe_setup(estimator):
                say(line)
        spec = self.job.spec
        self.bar = progress_bar(run.expected, self.quiet, desc=Path(spec.text).name if spec.kind == "file" else spec.stem)
        self.clock = time.monotonic()

    def progress(self, frames: int) -> None:
        self.bar.update(frames)
        self.interrupts.check()

    def bars(self) -> tuple:
        return (self.bar,)

    def interrupted(self, stopped: str) -> None:
        if self.run is None:
            say("Interrupted before the first frame; nothing written.")
            return
        where = f" to {self.job.out_path}" if self.job.out_path is not None else ""
        marked = ' (marked "complete": false)' if self.job.options.fmt == "posecli" else ""
        say(f"{stopped}: {self.run.frames_done} frames written{where}{marked}.")

    def finished(self, run) -> None:
        """What the run left: warnings, frames dropped, the annotated video; exit 1 for
        frames of a folder that did not decode."""
        if self.verbose:
            for line in describe_done(self.estimator, run.frames_done, "frames", self.clock):
                say(line)
            if run.sparse_counts is not None:
                c = run.sparse_counts
                say(f"network on the whole frame: {c['whole']} frames, on crops: {c['crops']}, "
                    f"not at all: {c['none']} (people carried by optical flow)")
        if run.stopped_early:
            kind = "received" if run.live else "decoded"
            say(f"Warning: {self.job.spec.text}: {run.error}; the {run.frames_done} {kind} frames were processed.")
        if run.stopped == "stalled":
            say(f"Warning: {self.job.spec.text}: no frame came in the last {run.stalled_s:.0f} s of --duration; "
                f"the {run.frames_done} received frames were processed.")
        if run.realtime:
            say(f"{run.frames_done} frames processed, {run.dropped} dropped (real time).", quiet=self.quiet)
        if run.render_note and run.render_note != self.noted:  # learnt while closing (the sound)
            self.note(run.render_note)
        if run.render_path is not None:
            say(f"annotated video: {run.render_path}", quiet=self.quiet)
        if self.job.trc_dir is not None:
            say(f"TRC: {len(run.trc_paths)} tracked people written to {shown_path(self.job.trc_dir)}",
                quiet=self.quiet)
        for path, message in run.unreadable:
            report_error(InputError(message, path=path))
        if run.unreadable:
            raise click.exceptions.Exit(1)


def _warn_maps_size(est, job) -> None:
    """Say when --write-maps will write more than MAPS_WARN_BYTES_PER_MINUTE per minute."""
    from ..formats.maps import MAPS_WARN_BYTES_PER_MINUTE, maps_bytes_per_frame

    per_frame = maps_bytes_per_frame(est, job.source.size_wh)
    per_minute = per_frame * (getattr(job.source, "fps", None) or 25.0) / job.options.step * 60
    if per_minute > MAPS_WARN_BYTES_PER_MINUTE:
        say(f"Warning: --write-maps writes about {per_minute / 1e9:.1f} GB per minute of video "
            f"({per_frame / 1e6:.2f} MB per frame); --step N or a lower --height writes less.")

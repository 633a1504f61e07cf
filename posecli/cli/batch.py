"""``posecli batch``: every image and video in a folder, one result each, resumable."""

from __future__ import annotations

import time
from pathlib import Path

import click
from click.core import ParameterSource

from ..batch.job import BatchReport
from ..errors import shown_path
from ..io.video import quiet_ffmpeg
from .common import (
    CommandReport,
    FORMAT_CHOICE,
    VERBOSE_HELP,
    VIDEO_MODE,
    batch_size_help,
    describe_done,
    describe_setup,
    estimator_settings,
    mode_option,
    progress_bar,
    safe_interrupts,
    say,
    sigterm_as_interrupt,
    usage_errors,
)
from .outputs import (
    angles_option,
    build_renderer,
    check_format_options,
    layout_option,
    pose_options,
)
from .wording import as_flags

EPILOG = """\b
Examples:
  posecli batch photos/ --out poses/                      # photos/a.jpg -> poses/a.json
  posecli batch footage/ --out poses/ --recursive --render
  posecli batch footage/ --out poses/ --format openpose   # clip.mp4 -> poses/clip/clip_000000000000_keypoints.json
  posecli batch footage/ --out tables/ --format csv       # clip.mp4 -> tables/clip.csv
  posecli batch photos/ --out poses/ --render --background black --max-people 1
  posecli batch footage/ --out poses/ --render drawn/ --track offline   # annotated copies in drawn/
  posecli batch footage/ --out /shared/poses/ --engine ray --address auto   # on a Ray cluster (docs/ray.md)
Run the same command again after an interruption: finished inputs are skipped.
"""


def _refuse_url(directory: Path) -> None:
    """A stream URL given as DIRECTORY: a usage mistake, worded without its password."""
    import re

    from ..io.urls import redact

    # click's Path folded "rtsp://" into "rtsp:/": put the scheme back as typed
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):/+(.*)$", str(directory), re.DOTALL)
    if m and not directory.exists():
        url = redact(f"{m[1]}://{m[2]}")
        raise click.UsageError(f"batch takes a folder, not a URL ({url}): for a stream use posecli video URL")


@click.command("batch", epilog=EPILOG)
@click.argument("directory", type=click.Path(path_type=Path, readable=False))
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="Folder for the results, mirroring DIRECTORY's structure.")
@click.option("--recursive", "-R", is_flag=True, help="Also process sub-folders.")
@click.option("--render", "-r", is_flag=False, flag_value="", default=None, metavar="[DIR]",
              help="Also write NAME_rendered.jpg / NAME_rendered.mp4: beside the results, or mirroring "
                   "DIRECTORY under DIR (a folder, as image and video --render take a path).")
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="posecli", show_default=True,
              help="posecli, openpose (videos: a folder of per-frame files), coco or csv (NAME.csv).")
@layout_option
@angles_option
@click.option("--overwrite", is_flag=True, help="Redo inputs whose results already exist.")
@click.option("--track", type=click.Choice(["online", "offline"]), default="online", show_default=True,
              is_flag=False, flag_value="online",
              help="Person ids across video frames: online, or offline (looks ahead: joins fragments, "
                   "fills short gaps; --engine local), as posecli video.")
@click.option("--no-track", is_flag=True, help="No person ids.")
@click.option("--smooth", is_flag=True, help="One-Euro filter tracked keypoints in videos.")
@click.option("--batch-size", type=click.IntRange(1, 256), default=None, metavar="N",
              help=batch_size_help("Video frames per network run"))
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or notes (errors are still reported).")
@click.option("--verbose", "-v", is_flag=True, help=VERBOSE_HELP)
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this process; ray: a pool of workers on Ray (pip install 'posecli[ray]').")
@click.option("--address", default=None, metavar="ADDR",
              help="With --engine ray: the cluster to join (e.g. auto, HOST:6379) [default: start one here].")
@click.option("--workers", type=click.IntRange(1, 4096), default=None, metavar="N",
              help="With --engine ray: model workers [default: one per GPU, else one per CPU core].")
@pose_options
@mode_option("balanced", note=f"Videos run in {VIDEO_MODE} mode, as posecli video runs them, unless --mode is "
                               "given. ")
def batch_command(directory, out, recursive, render, fmt, layout, angles, overwrite, track, no_track, smooth, batch_size, quiet, verbose,
                  engine, address, workers, max_people, part_candidates, background, thickness, radius, min_score,
                  show_ids, show_boxes, maps_dir, **est_opts):
    """Find people in every image and video in DIRECTORY; one result file per input.

    Unreadable files are reported and listed at the end (exit 1); the rest is processed.
    Results appear only when complete, so an interrupted batch resumes where it stopped.
    """
    from ..batch.job import BatchJob, run_batch
    from ..video.run import VideoOptions

    quiet_ffmpeg()
    _refuse_url(directory)
    check_format_options(fmt, layout, angles)
    estimator = estimator_settings(max_people=max_people, part_candidates=part_candidates, **est_opts)
    # videos in posecli video's mode unless --mode (or --zoom) says otherwise
    chosen = click.get_current_context().get_parameter_source("mode") != ParameterSource.DEFAULT
    video_mode = None if chosen or est_opts.get("zoom") is not None else VIDEO_MODE
    renderer = build_renderer(background, thickness, radius, min_score, show_ids, show_boxes)
    with usage_errors():
        video = VideoOptions(fmt=fmt, track=not no_track, offline=track == "offline", smooth=smooth,
                             batch_size=batch_size, renderer=renderer)
        job = BatchJob(directory, out, estimator, video, recursive=recursive, render=render is not None,
                       overwrite=overwrite, engine=engine, address=address, workers=workers, maps_dir=maps_dir,
                       layout=layout, angles=angles, render_dir=Path(render) if render else None,
                       video_mode=video_mode)
    # Locally Ctrl-C and SIGTERM stop between frames and inputs; on Ray at once (workers keep nothing).
    holding = sigterm_as_interrupt() if engine == "ray" else safe_interrupts()
    with holding as interrupts, BatchReporter(job, quiet, verbose, interrupts) as report:
        summary = run_batch(job, report)
    report.finished(summary)


class BatchReporter(CommandReport, BatchReport):
    """What ``posecli batch`` says: the plan, a bar of files (and of frames for a video),
    errors, warnings and notes above them, the summary; Ctrl-C and library errors as exits."""

    def __init__(self, job, quiet: bool, verbose: bool, interrupts) -> None:
        self.job, self.quiet, self.verbose, self.interrupts = job, quiet, verbose, interrupts
        self.files_bar = self.frames_bar = self.estimator = None
        self.total = self.done = 0
        self.noted: set[str] = set()
        self.clock = time.monotonic()
        self.has_videos = False
        self.video_frames, self.video_seconds, self.video_clock = 0, 0.0, 0.0

    def planned(self, plan) -> None:
        self.total = len(plan.todo)
        self.has_videos = any(j.kind == "video" for j in plan.todo)
        parts = [f"{len(plan.todo) + len(plan.done)} inputs", f"{len(plan.todo)} to do"]
        if plan.done:
            parts.append(f"{len(plan.done)} already done (--overwrite redoes them)")
        if plan.unsupported:
            parts.append(f"{len(plan.unsupported)} other files skipped")
        say(", ".join(parts), quiet=self.quiet)
        for path, problem in plan.failed:
            say(f"Error: {shown_path(path)}: {problem}")
        self.clock = time.monotonic()
        if plan.todo and self.job.engine == "ray":
            self.files_bar = progress_bar(self.total, self.quiet, desc="files", unit="file")

    def started(self, estimator) -> None:
        self.estimator = estimator
        if self.verbose:
            for line in describe_setup(estimator):
                say(line)
            if self.has_videos and self.job.video_mode not in (None, estimator.mode):
                say(f"videos: mode {self.job.video_mode}")
        self.clock = time.monotonic()
        self.files_bar = progress_bar(self.total, self.quiet, desc="files", unit="file")

    def input_started(self, job) -> None:
        self.video_clock = time.monotonic()
        if job.kind == "video":
            self.frames_bar = progress_bar(None, self.quiet, desc=job.rel.name, leave=False, position=1)

    def frames_expected(self, total) -> None:
        self.frames_bar.total = total
        self.frames_bar.refresh()

    def frames(self, n: int) -> None:
        self.frames_bar.update(n)
        self.check()

    def input_finished(self, job) -> None:
        if self.frames_bar is not None:
            self.frames_bar.close()
            self.frames_bar = None

    def check(self) -> None:
        if self.interrupts is not None:  # None on Ray: a signal stops it at once
            self.interrupts.check()

    def outcome(self, outcome) -> None:
        where = shown_path(outcome.job.input)
        if outcome.status == "failed":
            self._above(f"Error: {where}: {as_flags(outcome.problem or 'failed')}")
        else:
            self.done += 1
            if outcome.job.kind == "video" and self.job.engine == "local":
                self.video_frames += outcome.frames
                self.video_seconds += time.monotonic() - self.video_clock
            if outcome.warning:
                self._above(f"Warning: {where}: {outcome.warning}")
            if outcome.note and (self.job.engine == "ray" or outcome.note not in self.noted):
                self.noted.add(outcome.note)  # locally, the same note (codec) once
                self._above(f"Note: {where}: {outcome.note}", self.quiet)
        self.files_bar.update(1)

    def _above(self, line: str, quiet: bool = False) -> None:
        """A line on stderr that does not break the progress bars."""
        if not quiet:
            with self.files_bar.external_write_mode():
                click.echo(line, err=True)

    def bars(self) -> tuple:
        return (self.frames_bar, self.files_bar)

    def interrupted(self, stopped: str) -> None:
        if self.files_bar is None and self.job.engine == "local":
            say("Interrupted before the first input; nothing written.")
            return
        left = "those in progress left" if self.job.engine == "ray" else "the one in progress left"
        say(f"{stopped}: {self.done} of {self.total} inputs done; {left} no result. "
            "Run the same command again to resume.")

    def finished(self, summary) -> None:
        """The closing lines; exit 1 when an input failed."""
        plan, failed = summary.plan, summary.failed
        if self.job.engine == "ray" and plan.todo and self.verbose:  # the workers log what they ran
            say(f"engine ray: {time.monotonic() - self.clock:.1f} s for {len(plan.todo)} inputs")
        elif self.estimator is not None and self.verbose:
            for line in describe_done(self.estimator, summary.processed, "inputs", self.clock):
                say(line)
            if self.video_frames:
                say(f"videos: {self.video_frames} frames in {self.video_seconds:.1f} s "
                    f"({self.video_frames / max(self.video_seconds, 1e-9):.1f} frames/s)")
        if not plan.todo and not failed:
            return
        line = f"Done: {summary.processed} processed"
        if plan.done:
            line += f", {len(plan.done)} skipped (already done)"
        if summary.warned:
            line += f", {len(summary.warned)} stopped early"
        if failed:
            line += f", {len(failed)} failed:"
        say(line, quiet=self.quiet and not failed)
        for path, problem in failed:
            say(f"  {shown_path(path)}: {as_flags(problem)}")
        if failed:
            raise click.exceptions.Exit(1)

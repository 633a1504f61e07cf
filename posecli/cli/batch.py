"""``posecli batch``: every image and video in a folder, one result each, resumable."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..errors import MissingExtraError, OutputConflict, PoseError, shown_path
from ..io.atomic import check_writable
from ..io.video import quiet_ffmpeg
from .common import (
    FORMAT_CHOICE,
    VERBOSE_HELP,
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
    safe_interrupts,
    say,
    sigterm_as_interrupt,
)
from .outputs import build_renderer, maps_option, people_kwargs, people_options, render_style_options
from .wording import as_flags

EPILOG = """\b
Examples:
  posecli batch photos/ --out poses/                      # photos/a.jpg -> poses/a.json
  posecli batch footage/ --out poses/ --recursive --render
  posecli batch footage/ --out poses/ --format openpose   # clip.mp4 -> poses/clip/clip_000000000000_keypoints.json
  posecli batch footage/ --out tables/ --format csv       # clip.mp4 -> tables/clip.csv
  posecli batch photos/ --out poses/ --render --background black --max-people 1
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
@click.option("--render", "-r", is_flag=True, help="Also write NAME_rendered.jpg / NAME_rendered.mp4.")
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="posecli", show_default=True,
              help="posecli, openpose (videos: a folder of per-frame files), coco or csv (NAME.csv).")
@click.option("--overwrite", is_flag=True, help="Redo inputs whose results already exist.")
@click.option("--track/--no-track", default=True, show_default=True, help="Person ids across video frames.")
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
@people_options
@render_style_options
@maps_option
@estimator_options
@mode_option("balanced")
def batch_command(directory, out, recursive, render, fmt, overwrite, track, smooth, batch_size, quiet, verbose,
                  engine, address, workers, max_people, part_candidates, background, thickness, radius, min_score,
                  show_ids, show_boxes, maps_dir, **est_opts):
    """Find people in every image and video in DIRECTORY; one result file per input.

    Unreadable files are reported and listed at the end (exit 1); the rest is processed.
    Results appear only when complete, so an interrupted batch resumes where it stopped.
    """
    from ..batch.local import describe_failure, plan_batch, run_job
    from ..batch.prefetch import Prefetch
    from ..video.run import VideoOptions
    from ..video.smooth import OneEuroConfig

    quiet_ffmpeg()
    _refuse_url(directory)
    estimator_kwargs(**est_opts)  # every option checked before any work
    if smooth and not track:
        raise click.UsageError("--smooth follows tracked people: drop --no-track")
    renderer = build_renderer(background, thickness, radius, min_score, show_ids, show_boxes)
    extra = people_kwargs(max_people, part_candidates, keep_maps=maps_dir is not None)
    if engine == "local" and (address is not None or workers is not None):
        raise click.UsageError("--address and --workers go with --engine ray")
    if engine == "ray" and maps_dir is not None:
        raise click.UsageError("--write-maps goes with --engine local (maps are large: write them where they are made)")
    if engine == "ray":
        from ..batch.ray.driver import import_ray

        try:
            import_ray()
        except MissingExtraError as exc:
            raise fail(MissingExtraError(exc.module, exc.extra, "--engine ray")) from None
    try:
        plan = plan_batch(directory, out, recursive=recursive, fmt=fmt, render=render, overwrite=overwrite)
        if plan.todo:
            check_writable(out, is_dir=True)  # before any work, not once per input
            if maps_dir is not None:
                check_writable(maps_dir, is_dir=True)
    except OutputConflict as exc:
        raise click.UsageError(str(exc)) from None
    except PoseError as exc:
        raise fail(exc) from None
    total = len(plan.todo) + len(plan.done)
    parts = [f"{total} inputs", f"{len(plan.todo)} to do"]
    if plan.done:
        parts.append(f"{len(plan.done)} already done (--overwrite redoes them)")
    if plan.unsupported:
        parts.append(f"{len(plan.unsupported)} other files skipped")
    say(", ".join(parts), quiet=quiet)
    for path, problem in plan.failed:
        say(f"Error: {shown_path(path)}: {problem}")
    if not plan.todo:
        if plan.failed:
            _summary(plan, 0, [], [], quiet)
        return
    if engine == "ray":
        video = VideoOptions(fmt=fmt, track=track, smooth=OneEuroConfig() if smooth else None,
                             batch_size=batch_size or 1, renderer=renderer)
        started = time.monotonic()
        try:
            _batch_on_ray(plan, video, batch_size is None, address, workers, quiet, est_opts, extra)
        finally:
            if verbose:  # the model runs in the workers: what they ran is in their own logs
                say(f"engine ray: {time.monotonic() - started:.1f} s for {len(plan.todo)} inputs")
        return

    failed: list[tuple[Path, str]] = []
    warned: list[tuple[Path, str]] = []
    processed = 0
    with safe_interrupts() as interrupts:  # Ctrl-C and SIGTERM stop between frames and inputs
        try:
            est = build_estimator(extra, **est_opts)
        except PoseError as exc:
            raise fail(exc) from None
        except KeyboardInterrupt as exc:
            say("Interrupted before the first input; nothing written.")
            raise interrupted_exit(exc) from None
        video = VideoOptions(fmt=fmt, track=track, smooth=OneEuroConfig() if smooth else None,
                             batch_size=batch_size or est.model.default_batch_size, renderer=renderer)
        if verbose:
            for line in describe_setup(est):
                say(line)
        started = time.monotonic()
        noted: set[str] = set()
        files_bar = progress_bar(len(plan.todo), quiet, desc="files", unit="file")
        ahead = Prefetch(est, plan.todo).start()  # the next photo decodes while this one runs
        try:
            for job in plan.todo:
                interrupts.check()
                frames_bar = None
                try:
                    if job.kind == "video":
                        frames_bar = progress_bar(None, quiet, desc=job.rel.name, leave=False, position=1)
                    result = run_job(est, job, video=video, decoded=ahead.take(job), maps_dir=maps_dir,
                                     progress=None if frames_bar is None else
                                     (lambda n, bar=frames_bar: (bar.update(n), interrupts.check())),
                                     on_start=None if frames_bar is None else _set_total(frames_bar))
                    processed += 1
                    if result.warning:
                        warned.append((job.input, result.warning))
                        _report(files_bar, f"Warning: {shown_path(job.input)}: {result.warning}")
                    if result.note and result.note not in noted:  # the same note (codec) once
                        noted.add(result.note)
                        _report(files_bar, f"Note: {shown_path(job.input)}: {result.note}", quiet)
                except (PoseError, OSError, ValueError, RuntimeError) as exc:  # cv2.error is an Exception too
                    failed.append((job.input, describe_failure(exc, job.input)))
                    _report(files_bar, f"Error: {shown_path(job.input)}: {as_flags(failed[-1][1])}")
                finally:
                    if frames_bar is not None:
                        frames_bar.close()
                files_bar.update(1)
        except KeyboardInterrupt as exc:
            files_bar.close()
            raise _interrupted(exc, processed, len(plan.todo), "the one in progress left") from None
        finally:
            ahead.close()
        files_bar.close()
    if verbose:
        for line in describe_done(est, processed, "inputs", started):
            say(line)
    _summary(plan, processed, warned, failed, quiet)


def _set_total(bar):
    def set_total(total):
        bar.total = total
        bar.refresh()

    return set_total


def _report(bar, line: str, quiet: bool = False) -> None:
    """A line on stderr that does not break the progress bars."""
    if quiet:
        return
    with bar.external_write_mode():
        click.echo(line, err=True)


def _batch_on_ray(plan, video, auto_batch_size: bool, address, workers, quiet: bool, est_opts: dict,
                  extra: dict) -> None:
    """``--engine ray``: the plan's inputs on a Ray pool; same reports and summary as locally."""
    from ..batch.ray.driver import run_batch_ray

    options = {**estimator_kwargs(**est_opts), **extra}
    files_bar = progress_bar(len(plan.todo), quiet, desc="files", unit="file")
    done = []

    def on_result(outcome) -> None:
        if outcome.status == "failed":
            _report(files_bar, f"Error: {shown_path(outcome.job.input)}: {as_flags(outcome.problem or 'failed')}")
        else:
            done.append(outcome)
            if outcome.warning:
                _report(files_bar, f"Warning: {shown_path(outcome.job.input)}: {outcome.warning}")
            if outcome.note:
                _report(files_bar, f"Note: {shown_path(outcome.job.input)}: {outcome.note}", quiet)
        files_bar.update(1)

    with sigterm_as_interrupt():
        try:
            result = run_batch_ray(plan, options, address=address, num_workers=workers, video=video,
                                   auto_batch_size=auto_batch_size, on_result=on_result)
        except PoseError as exc:
            files_bar.close()
            raise fail(exc) from None
        except KeyboardInterrupt as exc:
            files_bar.close()
            raise _interrupted(exc, len(done), len(plan.todo), "those in progress left") from None
    files_bar.close()
    _summary(plan, result.processed, result.warned, result.failed, quiet)


def _interrupted(exc: KeyboardInterrupt, done: int, total: int, in_progress: str):
    """Say how far an interrupted batch got; the exit (130 or 143) to raise."""
    what = "Terminated" if isinstance(exc, Terminated) else "Interrupted"
    say(f"{what}: {done} of {total} inputs done; {in_progress} no result. Run the same command again to resume.")
    return interrupted_exit(exc)


def _summary(plan, processed: int, warned: list, failed: list, quiet: bool) -> None:
    """The closing lines, as the local engine writes them; exit 1 when an input failed."""
    failed = list(plan.failed) + list(failed)  # those found while planning, then those that failed
    summary = f"Done: {processed} processed"
    if plan.done:
        summary += f", {len(plan.done)} skipped (already done)"
    if warned:
        summary += f", {len(warned)} stopped early"
    if failed:
        summary += f", {len(failed)} failed:"
    say(summary, quiet=quiet and not failed)
    for path, problem in failed:
        say(f"  {shown_path(path)}: {as_flags(problem)}")
    if failed:
        raise click.exceptions.Exit(1)

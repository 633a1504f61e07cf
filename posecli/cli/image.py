"""``posecli image``: people in photos, as JSON and annotated images."""

from __future__ import annotations

from pathlib import Path

import click

from ..batch.photos import PhotoJob, PhotoReport, run_photos
from ..errors import shown_path
from .common import (
    CommandReport,
    FORMAT_CHOICE,
    describe_setup,
    estimator_settings,
    mode_option,
    progress_bar,
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
from .progress import echo_above
from .wording import error_text

# the glob unquoted: the shell expands it (posecli image takes file names, not patterns)
FOLDER_HINT = " (for a folder: posecli batch {folder} --out poses/, or a glob: posecli image {folder}/*.jpg)"

EPILOG = """\b
Examples:
  posecli image photo.jpg                                # JSON on stdout
  posecli image photo.jpg --out photo.json --render photo_pose.jpg
  posecli image a.jpg b.jpg --format openpose --out poses/
  posecli image photo.jpg --format coco --scales 1,0.75 --flip
  posecli image photo.jpg --mode fast                        # one pass, no zoom-in: ~5x faster
  posecli image photo.jpg --format csv --out photo.csv       # a row per person and keypoint
  posecli image photo.jpg --format csv --angles --out a.csv  # and a row per joint/segment angle
  posecli image photo.jpg --format openpose --layout body25 --out photo_keypoints.json
  posecli image group.jpg --max-people 1 --part-candidates   # the strongest person; every peak
  posecli image photo.jpg --render skel.png --background black --thickness 6 --min-score 0.3
  posecli image cutout.png --render cutout_pose.png --keep-alpha --boxes
  posecli image photo.jpg --write-maps maps/                 # maps/photo.npz: heatmaps and PAFs
"""


@click.command("image", epilog=EPILOG)
@click.argument("photos", nargs=-1, required=True, type=click.Path(path_type=Path, readable=False))
@click.option("--out", "-o", type=click.Path(), default=None,
              help="JSON file, or a directory for one file per photo [default: stdout].")
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="posecli", show_default=True,
              help="posecli (named keypoints), openpose (CMU 1.3 JSON), coco (keypoint results) "
                   "or csv (a row per person and keypoint).")
@click.option("--render", "-r", type=click.Path(), default=None,
              help="Annotated image file (one photo) or directory (several).")
@layout_option
@angles_option
@click.option("--keep-alpha", is_flag=True,
              help="The annotated image keeps the photo's transparency (opaque where drawn); PNG, WebP or TIFF.")
@click.option("--verbose", "-v", is_flag=True, help="Say which model and provider ran, and the time per photo.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar (errors are still reported).")
@pose_options
@mode_option("accurate")
def image_command(photos, out, fmt, layout, angles, render, keep_alpha, verbose, quiet, max_people, part_candidates, background,
                  thickness, radius, min_score, show_ids, show_boxes, maps_dir, **est_opts):
    """Find people in PHOTOS and write their skeletons.

    Keypoints are in image pixels; missing ones are null (posecli format). Several photos with
    --render (or --format openpose --out) need a folder: a name with an extension is refused. With --out a
    directory, two photos that would share a result name keep their extension
    (x.jpg.json, x.png.json), then get -2, -3 in the order given.
    """
    check_format_options(fmt, layout, angles)
    estimator = estimator_settings(max_people=max_people, part_candidates=part_candidates, **est_opts)
    renderer = build_renderer(background, thickness, radius, min_score, show_ids, show_boxes)
    with usage_errors():
        job = PhotoJob(photos, estimator, fmt=fmt, out=out, render=render, keep_alpha=keep_alpha, renderer=renderer,
                       maps_dir=maps_dir, layout=layout, angles=angles)
    with safe_interrupts() as interrupts, PhotoReporter(job, quiet, verbose, interrupts) as report:
        run_photos(job, report)
    if report.failures:
        raise click.exceptions.Exit(1)


class PhotoReporter(CommandReport, PhotoReport):
    """What ``posecli image`` says: a progress bar, errors above it, ``--verbose`` lines; at
    Ctrl-C what was kept; library errors as ``Error: ...`` (exit 1)."""

    def __init__(self, job: PhotoJob, quiet: bool, verbose: bool, interrupts) -> None:
        self.job, self.quiet, self.verbose, self.interrupts = job, quiet, verbose, interrupts
        self.bar = None
        self.written = self.failures = 0

    def started(self, estimator) -> None:
        if self.verbose:
            for line in describe_setup(estimator):
                say(line)
        total = len(self.job.photos)
        self.bar = progress_bar(total, self.quiet or total < 2, desc="photos", unit="photo")

    def done(self, photo, people: int, seconds: float) -> None:
        self.written += 1
        if self.verbose:
            echo_above(self.bar, f"{shown_path(photo)}: {people} people, {seconds * 1000:.0f} ms")

    def failed(self, photo, error) -> None:
        self.failures += 1
        hint = FOLDER_HINT.format(folder=shown_path(photo)) if Path(photo).is_dir() else ""
        echo_above(self.bar, f"Error: {error_text(error)}{hint}")

    def check(self) -> None:
        self.interrupts.check()

    def progress(self) -> None:
        self.bar.update(1)

    def bars(self) -> tuple:
        return (self.bar,)

    def interrupted(self, stopped: str) -> None:
        say(f"{stopped}: {self._kept()}.")

    def _kept(self) -> str:
        """What an interrupted run left, for its last line."""
        job, total = self.job, len(self.job.photos)
        if job.out is None:
            return f"{self.written} of {total} photos written"
        if job.out_is_dir:
            return f"{self.written} of {total} photos written to {shown_path(job.out)}"
        if not self.written:
            return f"nothing written to {shown_path(job.out)}"
        marked = ' (marked "complete": false)' if job.fmt == "posecli" else ""
        return f"{self.written} of {total} photos written to {shown_path(job.out)}{marked}"

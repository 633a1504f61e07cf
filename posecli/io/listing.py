"""Inputs found in a folder."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .paths import is_image, is_video


@dataclass
class Listing:
    """Inputs found in a folder: ``files`` (images and videos, sorted), ``skipped`` (other files)."""

    root: Path
    files: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    @property
    def images(self) -> list[Path]:
        return [p for p in self.files if is_image(p)]

    @property
    def videos(self) -> list[Path]:
        return [p for p in self.files if is_video(p)]


def list_inputs(directory: str | Path, recursive: bool = False, exclude: str | Path | None = None) -> Listing:
    """Images and videos in ``directory`` by extension, sorted by path.

    Hidden files and folders (name starting with '.') are ignored; files with other
    extensions are counted in ``skipped``. ``exclude``: a folder not to descend into
    (e.g. the output folder when it lies inside the input folder).
    """
    root = Path(directory)
    if not root.exists():
        raise InputError("no such folder", path=root)
    if not root.is_dir():
        raise InputError("not a folder", path=root)
    skip_dir = Path(exclude).resolve() if exclude is not None else None
    listing = Listing(root)
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise InputError(f"cannot list folder ({exc.strerror})", path=folder) from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_dir():
                if recursive and (skip_dir is None or path.resolve() != skip_dir):
                    pending.append(path)
            elif is_image(path) or is_video(path):
                listing.files.append(path)
            else:
                listing.skipped.append(path)
    listing.files.sort(key=lambda p: p.relative_to(root).parts)
    listing.skipped.sort()
    return listing

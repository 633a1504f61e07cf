"""The user's model store: a directory of imported ONNX models.

Location: ``$POSECLI_MODELS`` if set; else, for posecli run from a source checkout, the
checkout's ``models/store`` when it holds models (where ``make demo`` puts them, so the
checkout's ``.venv/bin/posecli`` finds them); else ``$XDG_CACHE_HOME/posecli/models``, else
``~/.cache/posecli/models``. A model named ``NAME`` is stored as ``NAME.onnx`` (float32)
and, when imported with INT8 quantization, ``NAME.int8.onnx`` beside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError

DEFAULT_MODEL = "human-pose-estimation-0001"
CHECKOUT_STORE = Path("models") / "store"  # where the Makefile keeps a checkout's models
PRECISION_SUFFIX = {"fp32": ".onnx", "int8": ".int8.onnx", "fp16": ".fp16.onnx"}
MAX_NAME_CHARS = 200  # a model name plus its longest suffix stays under a file system's 255


def check_model_name(name: str) -> str:
    """``name`` when it is a plain model name, the one check every store path is made with:
    a file name of its own (no ``/`` or ``\\``, not ``.`` or ``..``, no NUL or control
    characters, at most :data:`MAX_NAME_CHARS`), so that ``NAME.onnx`` stays in the store.
    :class:`ModelError` otherwise."""
    text = str(name)
    bad = (not text or text in (".", "..") or len(text) > MAX_NAME_CHARS
           or any(c in text for c in ("/", "\\", os.sep, os.altsep or "/"))
           or not text.isprintable())
    if bad:
        shown = text.encode("unicode_escape").decode("ascii")[:80]
        raise ModelError(f"model name '{shown}' is not a plain name: a model name is a file name in the store "
                         f"(no '/', '\\', '..', NUL or control characters; at most {MAX_NAME_CHARS} characters)")
    return text


def store_dir() -> Path:
    """The model store directory (not created here; see the module docstring)."""
    env = os.environ.get("POSECLI_MODELS")
    if env:
        return Path(env).expanduser()
    checkout = checkout_store()
    if checkout is not None:
        return checkout
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache).expanduser() if cache else Path.home() / ".cache"
    return base / "posecli" / "models"


def checkout_store() -> Path | None:
    """``models/store`` of the source checkout posecli runs from, when it holds models; else None
    (an installed wheel has no checkout around it)."""
    root = Path(__file__).resolve().parents[2]
    store = root / CHECKOUT_STORE
    if not (root / "pyproject.toml").is_file() or not store.is_dir():
        return None
    return store if any(store.glob("*.onnx")) else None


def model_path(name: str, precision: str = "fp32", store: Path | None = None) -> Path:
    """Where model ``name`` of ``precision`` lives (or would live) in the store."""
    try:
        suffix = PRECISION_SUFFIX[precision]
    except KeyError:
        raise ModelError(f"unknown precision '{precision}' (known: {', '.join(PRECISION_SUFFIX)})") from None
    return (store or store_dir()) / f"{check_model_name(name)}{suffix}"


def unlink_store_link(path: Path) -> None:
    """Before a model file is written at ``path`` in the store: a symbolic link there is
    removed (its target is left as it was), so that the new file takes the link's place
    instead of overwriting whatever the link points to."""
    if path.is_symlink():
        try:
            path.unlink()
        except OSError as exc:
            raise ModelError(f"cannot replace the link in the model store ({exc.strerror})", path=path) from None


def looks_like_path(ref: str) -> bool:
    """True when a ``--model`` value names a file rather than a model in the store."""
    if os.sep in ref or "/" in ref or ref.endswith(".onnx"):
        return True
    try:
        return Path(ref).exists()
    except (OSError, ValueError):  # a name too long for a file, a NUL: not a file here
        return False


@dataclass(frozen=True)
class StoredModel:
    name: str
    precision: str
    path: Path


def list_models(store: Path | None = None) -> list[StoredModel]:
    """Every model file in the store, sorted by name then precision."""
    root = store or store_dir()
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.glob("*.onnx")):
        fname = path.name
        precision = "fp32"
        name = fname[: -len(".onnx")]
        for prec, suffix in PRECISION_SUFFIX.items():
            if prec != "fp32" and fname.endswith(suffix):
                precision, name = prec, fname[: -len(suffix)]
        found.append(StoredModel(name, precision, path))
    return sorted(found, key=lambda m: (m.name, m.precision))


def resolve_model(ref: str | None, precision: str = "fp32", store: Path | None = None) -> Path:
    """The file for a ``--model`` value: a path, or a name in the store (default model if None).

    ``precision`` ``"auto"`` asks for whichever variant the caller could not find (only the
    message differs). Raises :class:`ModelError` naming the file, with the command that
    fetches or converts what is missing.
    """
    ref = ref or DEFAULT_MODEL
    if looks_like_path(ref):
        path = Path(ref).expanduser()
        if not path.exists():
            raise ModelError("model file does not exist", path=path)
        if path.is_dir():
            raise ModelError("is a directory, not a model file", path=path)
        return path
    path = model_path(ref, "fp32" if precision == "auto" else precision, store)
    if path.exists():
        return path
    has_some = any(model_path(ref, p, store).exists() for p in PRECISION_SUFFIX)
    if not has_some:
        hint = first_run_hint(ref) or _known_models(store)
        raise ModelError(f"model '{ref}' is not in the model store{hint}", path=path.parent)
    if ref == DEFAULT_MODEL:
        hint = f" (make it with: download_model(precisions=['{precision}']))"
    else:
        hint = f" (import it with precision={precision!r})"
    raise ModelError(f"model '{ref}' ({precision}) is not in the model store{hint}", path=path)


def _known_models(store: Path | None) -> str:
    """What the store holds, for a name that is not there."""
    names = sorted({m.name for m in list_models(store)})
    held = f"it has: {', '.join(names)}" if names else "it is empty"
    return f" ({held}; list_models() shows them, with their paths)"


def first_run_hint(name: str) -> str:
    """What to run to get model ``name`` into the store (:func:`posecli.network.download.download_model`),
    or "" for a model posecli cannot fetch."""
    if name != DEFAULT_MODEL:
        return ""
    import importlib.util

    from ..errors import extra_requirements

    missing = [m for m in ("openvino", "onnx") if importlib.util.find_spec(m) is None]
    install = ""
    if missing:
        reqs = extra_requirements("import") or missing
        install = "pip install " + " ".join(f"'{r}'" for r in reqs) + " && "
    return (f"; run: {install}download_model() (from a copy of its OpenVINO IR: download_model(source=DIR)), "
            "or set POSECLI_MODELS to a folder that has it")

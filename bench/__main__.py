"""``python -m bench``: run every bench section, write bench/results/report.{json,md}.

Sections come from :mod:`bench.bench_core` and then from any other ``bench/bench_*.py``
(see :mod:`bench`). Each section fails soft: its error is recorded, the others still run,
and the report is always written.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

from . import RESULTS

_META_KEYS = ("title", "generated", "settings", "machine", "sections")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------
def discover() -> list[tuple[str, object]]:
    """``(name, module or error)`` for bench_core first, then the other bench_*.py by name."""
    here = Path(__file__).resolve().parent
    stems = ["bench_core"] + sorted(p.stem for p in here.glob("bench_*.py") if p.stem != "bench_core")
    out = []
    for stem in stems:
        try:
            out.append((stem[len("bench_"):], importlib.import_module(f"bench.{stem}")))
        except Exception as exc:  # a broken module is one failed section, not a lost report
            out.append((stem[len("bench_"):], exc))
    return out


def _error(exc: BaseException) -> dict:
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {"error": f"{type(exc).__name__}: {exc}", "traceback": "".join(tb[-3:])[-2000:]}


def _run_soft(report: dict, name: str, fn) -> None:
    """Run one section; on failure record the error under its name."""
    _log(f"bench: {name} ...")
    t0 = time.perf_counter()
    try:
        result = fn(report)
        if isinstance(result, dict):
            report["sections"][name] = result
    except Exception as exc:
        report["sections"][name] = _error(exc)
        _log(f"bench: {name} failed: {type(exc).__name__}: {exc}")
    _log(f"bench: {name} done in {time.perf_counter() - t0:.1f} s")


def section_names(modules: list[tuple[str, object]]) -> list[str]:
    """What ``--only`` accepts: each module's name and the names of its sections."""
    names = []
    for modname, module in modules:
        names.append(modname)
        names += [name for name, _ in getattr(module, "SECTIONS", None) or ()]
    return list(dict.fromkeys(names))


def run_sections(report: dict, only: list[str] | None = None, modules: list | None = None) -> None:
    for modname, module in discover() if modules is None else modules:
        if isinstance(module, Exception):
            if not only or modname in only:
                report["sections"][modname] = _error(module)
            continue
        sections = getattr(module, "SECTIONS", None)
        if sections is not None:
            for name, fn in sections:
                if not only or name in only or modname in only:
                    _run_soft(report, name, fn)
        elif hasattr(module, "run"):
            if not only or modname in only:
                _run_soft(report, modname, module.run)
                if modname not in report["sections"] and not set(report) - set(_META_KEYS):
                    report["sections"][modname] = {"note": "the section added nothing to the report"}


# ---------------------------------------------------------------------------------------------
# Machine
# ---------------------------------------------------------------------------------------------
def machine() -> dict:
    info: dict = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    for mod in ("posecli", "onnxruntime", "numpy", "cv2"):
        try:
            info[mod] = importlib.import_module(mod).__version__
        except Exception:
            pass
    try:
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    info["models"] = os.environ.get("POSECLI_MODELS")
    info["loadavg_start"] = _loadavg()
    return info


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------
def clean(obj):
    """JSON-able copy: numpy scalars to Python, NaN/inf to None, tuples to lists."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "shape", None) == ():
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _table(rows: list[dict]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    return lines


def _block(section: dict, level: int = 3) -> list[str]:
    lines: list[str] = []
    if "error" in section:
        lines += [f"**Failed:** `{_fmt(section['error'])}`", ""]
    for note in section.get("notes", []) or []:
        lines += [str(note), ""]
    bullets = []
    nested = []
    for key, value in section.items():
        if key in ("title", "notes", "error", "traceback"):
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            nested.append((key, value))
        elif isinstance(value, dict):
            nested.append((key, value))
        elif isinstance(value, list):
            bullets.append(f"- {key}: {', '.join(_fmt(v) for v in value)}")
        else:
            bullets.append(f"- {key}: {_fmt(value)}")
    if bullets:
        lines += bullets + [""]
    for key, value in nested:
        if key != "rows":
            lines += [f"{'#' * level} {key}", ""]
        if isinstance(value, list):
            lines += _table(value) + [""]
        else:
            lines += _block(value, level + 1)
    return lines


def markdown(report: dict) -> str:
    m = report.get("machine", {})
    lines = [f"# {report.get('title', 'posecli bench')}", "",
             f"Generated {report.get('generated')} by `python -m bench` (`make bench`).", "", "## Machine", ""]
    lines += [f"- {k}: {_fmt(v) if not isinstance(v, list) else ', '.join(_fmt(x) for x in v)}" for k, v in m.items()]
    lines += [f"- settings: {report.get('settings')}", ""]
    for name, section in report.get("sections", {}).items():
        section = section if isinstance(section, dict) else {"value": section}
        lines += [f"## {section.get('title', name)}", ""]
        lines += _block(section)
    for key, value in report.items():  # whatever sections put at the top level
        if key in _META_KEYS:
            continue
        lines += [f"## {key}", ""]
        lines += _block(value if isinstance(value, dict) else {"value": value})
    return "\n".join(lines).rstrip() + "\n"


def write(report: dict, out: Path) -> tuple[Path, Path]:
    from posecli.formats.writers import write_json_atomic
    from posecli.io.atomic import AtomicFile

    out.mkdir(parents=True, exist_ok=True)
    data = clean(report)
    json_path, md_path = out / "report.json", out / "report.md"
    write_json_atomic(json_path, data)
    with AtomicFile(md_path) as f:
        f.write(markdown(data))
    return json_path, md_path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description="posecli speed and accuracy report.")
    ap.add_argument("--out", type=Path, default=RESULTS, help="directory for report.json and report.md")
    ap.add_argument("--repeat", type=int, default=7, help="timed runs per figure (median)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs before them")
    ap.add_argument("--quick", action="store_true", help="repeat 3, warm-up 1 (a smoke run)")
    ap.add_argument("--only", action="append", metavar="SECTION", help="run only this section (repeatable)")
    args = ap.parse_args(argv)
    modules = discover()
    known = section_names(modules)
    for name in args.only or ():
        if name not in known:  # a typo would otherwise run nothing and write an empty report
            ap.error(f"--only {name}: no such section (choose from {', '.join(known)})")
    from posecli.cli import tune_malloc

    tune_malloc()  # the process settings the posecli command runs with
    repeat, warmup = (3, 1) if args.quick else (max(1, args.repeat), max(0, args.warmup))
    report = {
        "title": "posecli bench",
        "generated": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "settings": {"repeat": repeat, "warmup": warmup},
        "machine": machine(),
        "sections": {},
    }
    t0 = time.perf_counter()
    try:
        run_sections(report, args.only, modules)
    finally:
        report["machine"]["loadavg_end"] = _loadavg()
        report["settings"]["seconds"] = round(time.perf_counter() - t0, 1)
        json_path, md_path = write(report, args.out)
        _log(f"bench: wrote {md_path} and {json_path}")
    failed = [k for k, v in report["sections"].items() if isinstance(v, dict) and "error" in v]
    if failed:
        _log(f"bench: sections failed: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

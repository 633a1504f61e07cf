"""Which runtime ``runtime='auto'`` uses on the CPU: measured once, remembered in the store.

CPU features do not say which runtime is faster: OpenVINO led onnxruntime by 2.6x on
Intel Xeons with AMX and by 1.3x on an AMD EPYC (Zen 5, AVX-512 VNNI + BF16) for the INT8
model, while an earlier AMD machine ran them level. So the first time a stored model is
opened with ``auto`` on a CPU, both runtimes run it side by side at its native input size
(interleaved, a few frames each, about a second in all) and the faster one is kept;
OpenVINO only when it is clearly faster (:data:`MARGIN`), since onnxruntime is the one
already loaded. The verdict must not depend on the machine's load at that moment: each
round runs both runtimes back to back, so both see the same load, and the verdict is the
median of the per-round time ratios; when that median is near the margin
(:data:`UNSURE`), more rounds are measured, up to :data:`MAX_MEASURES` times as many. The verdict is stored in ``<store>/runtime-choice.json`` under a key over
the model file (size, modification time), both runtimes' versions, the CPU (model name and
feature flags) and the thread setting; any change measures again. An unwritable store
keeps the verdict for the process only.

A model given by path (outside the store) runs on onnxruntime unless ``runtime='openvino'``
is asked for: the store is where verdicts and compiled networks are kept, as it is for
onnxruntime's optimized graphs.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from ...io.filelock import locked

CHOICE_FILE = "runtime-choice.json"
MARGIN = 0.95  # OpenVINO is chosen when its median time is below 95 % of onnxruntime's
WARMUP = 2
ROUNDS = 7
MAX_ENTRIES = 64  # oldest verdicts are dropped beyond this
#: OpenVINO / onnxruntime time ratios near enough the margin that more rounds are measured.
UNSURE = (0.85, 1.08)
MAX_MEASURES = 3  # at most this many batches of ROUNDS rounds
MAX_CHOICE_BYTES = 1 << 20  # a larger table is junk: measured again
NEW_SIZES = 3  # widths timed for the first-run cost of a new size on OpenVINO's dynamic network
#: Part of the key: verdicts of an earlier policy (without what this one needs) are measured again.
POLICY = "2"

_memory: dict[str, dict] = {}


def choice_key(path: Path, threads: int | None, cpu: str) -> str:
    """The key a verdict is stored under (see the module's docstring)."""
    from ..runtimes import import_onnxruntime

    onnxruntime = import_onnxruntime()  # telemetry off: no files in the user's home

    st = Path(path).resolve().stat()
    parts = [str(Path(path).resolve()), str(st.st_size), str(st.st_mtime_ns), onnxruntime.__version__,
             _openvino_version(), cpu, str(threads or 0), POLICY]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def _openvino_version() -> str:
    """The installed openvino's version without importing it (importlib.metadata costs ~40 ms;
    the dist-info folder beside the package says the same), else its files' time stamp."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("openvino")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        return "none"
    package = Path(spec.origin).parent
    for info in package.parent.glob("openvino-*.dist-info"):
        return info.name[len("openvino-"):-len(".dist-info")]
    try:
        return str(Path(spec.origin).stat().st_mtime_ns)
    except OSError:
        return "unknown"


def cached_verdict(store: Path, key: str) -> dict | None:
    """The stored verdict for ``key`` (``{"runtime", "onnxruntime_ms", "openvino_ms", ...}``)."""
    if key in _memory:
        return _memory[key]
    try:
        table = json.loads(_read_table(store / CHOICE_FILE))
        verdict = table[key]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):  # junk (deeply nested too): measure again
        return None
    if not isinstance(verdict, dict) or verdict.get("runtime") not in ("onnxruntime", "openvino"):
        return None
    for name in ("onnxruntime_ms", "openvino_ms", "compile_s", "openvino_new_size_extra_ms"):
        value = verdict.get(name, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1e6 < value < 1e6:
            return None  # NaN, inf, not a number: measure again
        if value < 0 and name != "openvino_new_size_extra_ms":  # (noise can make the extra negative)
            return None
    size = verdict.get("size_hw")
    if not (isinstance(size, list) and len(size) == 2):
        return None
    return verdict


def _read_table(path: Path) -> str:
    """The verdict table's text; OSError when it is not a regular file (a FIFO there would
    hang every command) or is too large, ValueError when it is not UTF-8: junk either way."""
    from ...io.streams import read_regular

    return read_regular(path, MAX_CHOICE_BYTES).decode("utf-8")


def record_verdict(store: Path, key: str, verdict: dict) -> None:
    """Remember ``verdict`` in memory and, when the store is writable, in its table (read
    again and merged under a lock: runs measuring at once each keep their verdict)."""
    _memory[key] = verdict
    path = store / CHOICE_FILE
    try:
        if not os.access(store, os.W_OK) or (path.exists() and not path.is_file()):
            return  # read-only, or a FIFO (opening it to write would block) or folder there
        with locked(path):
            _merge_into(path, key, verdict)
    except OSError:  # a read-only or full store: the verdict holds for this process
        return


def _merge_into(path: Path, key: str, verdict: dict) -> None:
    """Add ``key: verdict`` to the table at ``path`` as it is now (oldest dropped past
    :data:`MAX_ENTRIES`) and write it atomically."""
    from ...errors import PoseError
    from ...io.atomic import AtomicFile

    try:
        table = json.loads(_read_table(path))
        if not isinstance(table, dict):
            table = {}
    except (OSError, ValueError, RecursionError):
        table = {}
    table[key] = verdict
    while len(table) > MAX_ENTRIES:
        table.pop(next(iter(table)))
    try:
        with AtomicFile(path) as f:
            f.write(json.dumps(table, indent=1, sort_keys=False) + "\n")
    except (OSError, ValueError, PoseError):
        return


def measure(runners: dict[str, Callable[[], object]], warmup: int = WARMUP, rounds: int = ROUNDS,
            clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Median seconds per call of each runner, run interleaved (A B A B ...)."""
    return {name: statistics.median(t) for name, t in sample(runners, warmup, rounds, clock).items()}


def sample(runners: dict[str, Callable[[], object]], warmup: int = WARMUP, rounds: int = ROUNDS,
           clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Seconds of each call of each runner, ``rounds`` rounds of one call each in turn (A B A B ...)."""
    for _ in range(warmup):
        for run in runners.values():
            run()
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            t0 = clock()
            run()
            samples[name].append(clock() - t0)
    return samples


def compare_runtimes(runners: dict[str, Callable[[], object]], clock: Callable[[], float] = time.perf_counter
                     ) -> tuple[dict[str, float], float, int]:
    """(median seconds of each, median per-round ratio openvino / onnxruntime, rounds run) of
    the two runners ``onnxruntime`` and ``openvino``, measured again while the ratio is
    :data:`UNSURE` (see the module docstring)."""
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for batch in range(MAX_MEASURES):
        more = sample(runners, WARMUP if batch == 0 else 0, ROUNDS, clock)
        for name in runners:
            samples[name] += more[name]
        ratios = [ov / max(ort, 1e-12) for ov, ort in zip(samples["openvino"], samples["onnxruntime"])]
        ratio = statistics.median(ratios)
        if not UNSURE[0] <= ratio <= UNSURE[1]:
            break
    times = {name: statistics.median(t) for name, t in samples.items()}
    return times, ratio, len(samples["openvino"])


def new_size_extra(run_dynamic: Callable[[object], object], probe, sizes: int = NEW_SIZES,
                   clock: Callable[[], float] = time.perf_counter) -> float:
    """Median seconds that an input size's first run on OpenVINO's dynamic network takes more
    than its second (the kernels it prepares per size), over ``sizes`` widths it has not
    seen, each :data:`~.mixed.WIDTH_STEP` apart, after one run that opens the network."""
    import numpy as np

    from .mixed import WIDTH_STEP

    run_dynamic(probe)  # the dynamic network's own compilation: not a per-size cost
    extras = []
    for i in range(1, sizes + 1):
        x = np.ascontiguousarray(np.concatenate([probe] + [probe[..., :WIDTH_STEP]] * i, axis=3))
        t0 = clock()
        run_dynamic(x)
        t1 = clock()
        run_dynamic(x)
        extras.append((t1 - t0) - (clock() - t1))
    return statistics.median(extras)


def verdict_from(times: dict[str, float], size_hw, compile_s: float = 0.0, ratio: float | None = None,
                 rounds: int | None = None) -> dict:
    """The runtime to use given median times of both (or, when given, the median per-round
    ``ratio`` openvino / onnxruntime), with what was measured (and how long OpenVINO took to
    compile a network for one size)."""
    ort, ov = times["onnxruntime"], times["openvino"]
    ratio = ov / ort if ratio is None else ratio
    runtime = "openvino" if ratio < MARGIN else "onnxruntime"
    extra = {} if rounds is None else {"ratio": round(ratio, 3), "rounds": rounds}
    return {
        "runtime": runtime,
        "onnxruntime_ms": round(ort * 1000, 2),
        "openvino_ms": round(ov * 1000, 2),
        "size_hw": list(size_hw),
        "compile_s": round(compile_s, 3),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **extra,
    }


def describe(verdict: dict, cached: bool) -> str:
    """One line: which runtime auto chose and why."""
    return (f"auto: {verdict['runtime']} (measured on this CPU at {verdict['size_hw'][0]}x{verdict['size_hw'][1]}: "
            f"openvino {verdict['openvino_ms']} ms, onnxruntime {verdict['onnxruntime_ms']} ms per frame"
            f"{', remembered in the store' if cached else ''})")


# -- opening a model on the runtime asked for --------------------------------------------------
class Opened:
    """A session on one runtime: ``session``, ``provider``, ``cache`` (compiled/optimized
    graph cache, or None), ``info`` (ModelInfo), ``runtime``, ``note`` (why this runtime)."""

    def __init__(self, session, provider: str, cache, info, runtime: str, note: str):
        self.session, self.provider, self.cache, self.info = session, provider, cache, info
        self.runtime, self.note = runtime, note


def open_backend(path: Path, device: str, threads: int | None, runtime: str, on_cpu: bool,
                 open_onnxruntime: Callable, read_metadata: Callable, cpu: str) -> Opened:
    """Open ``path`` on ``runtime`` (``auto``: see the module's docstring).

    ``open_onnxruntime(path, device, threads) -> (session, provider, cache)`` and
    ``read_metadata(path, session) -> ModelInfo`` come from the session module.
    """
    def ort(note: str) -> Opened:
        session, provider, cache = open_onnxruntime(path, device, threads)
        return Opened(session, provider, cache, read_metadata(path, session), "onnxruntime", note)

    def openvino(note: str) -> Opened:
        session = open_openvino(path, threads)
        return Opened(session, session.get_providers()[0], session.cache_dir, read_metadata(path, session),
                      "openvino", note)

    if runtime == "onnxruntime":
        return ort("runtime='onnxruntime' (asked for)")
    if runtime == "openvino":
        return openvino("runtime='openvino' (asked for)")
    if not on_cpu:
        return ort("auto: onnxruntime (the GPU runs on onnxruntime)")
    from ...errors import PoseError
    from ..store import store_dir

    store = store_dir()
    if not _in_store(path, store):
        return ort("auto: onnxruntime (a model outside the store; runtime='openvino' runs it on OpenVINO)")
    if not _openvino_findable():
        return ort("auto: onnxruntime (openvino is not installed)")
    try:
        key = choice_key(path, threads, cpu)
    except OSError:
        return ort("auto: onnxruntime (the model file cannot be keyed)")
    verdict = cached_verdict(store, key)
    if verdict is not None:
        if verdict["runtime"] == "onnxruntime":
            return ort(describe(verdict, cached=True))
        return _mixed(ort(describe(verdict, cached=True)), verdict, path, threads)
    # First time on this CPU with this model and these versions: run both, keep the faster.
    first = ort("")
    try:
        second = openvino("")
    except PoseError as exc:
        first.note = f"auto: onnxruntime (openvino cannot run it: {exc.message})"
        return first
    x = _probe_input(first.info)
    names = list(dict.fromkeys([first.info.heatmaps.name, first.info.pafs.name]))
    feeds = {first.info.input_name: x}
    second.session.run(names, feeds, static=True)  # compile the network for this size alone
    compile_s = second.session.compile_s
    times, ratio, rounds = compare_runtimes({
        "onnxruntime": lambda: first.session.run(names, feeds),
        "openvino": lambda: second.session.run(names, feeds, static=True),
    })
    verdict = verdict_from(times, first.info.size_hw, compile_s, ratio, rounds)
    if verdict["runtime"] == "openvino":
        try:
            extra = new_size_extra(lambda x: second.session.run(names, {first.info.input_name: x}, dynamic=True), x)
            verdict["openvino_new_size_extra_ms"] = round(extra * 1000, 2)
        except (PoseError, RuntimeError):  # no dynamic network here: photos of many sizes stay on onnxruntime
            pass
    record_verdict(store, key, verdict)
    first.note = describe(verdict, cached=False)
    if verdict["runtime"] == "onnxruntime":
        return first
    return _mixed(first, verdict, path, threads, second.session)


def _mixed(base: Opened, verdict: dict, path: Path, threads: int | None, openvino=None) -> Opened:
    """``base`` (onnxruntime) with OpenVINO taking the input sizes that recur (see .mixed)."""
    from ..tensor import pad_input_value
    from .mixed import NEVER, MixedSession, break_even, dynamic_after, switch_after

    times = (float(verdict.get("compile_s", 0.5)), verdict["onnxruntime_ms"], verdict["openvino_ms"])
    after, pays = switch_after(*times), break_even(*times)
    dynamic = dynamic_after(verdict.get("openvino_new_size_extra_ms"), *times[1:])
    session = MixedSession(base.session, lambda: open_openvino(path, threads), after, openvino, pays_after=pays,
                           dynamic_after=dynamic)
    session.pad_with(pad_input_value(base.info), base.info.stride)
    note = f"{base.note}; sizes seen {after}+ times and videos of {pays}+ frames run on OpenVINO"
    if dynamic < NEVER:
        note += f", other sizes on its dynamic network from their {_ordinal(dynamic)} sight"
    return Opened(session, "+".join(session.get_providers()), base.cache, base.info, "openvino+onnxruntime", note)


def open_openvino(path: Path, threads: int | None):
    """An :class:`~.openvino.OpenVinoSession` with its compiled networks cached in the store."""
    from ..store import store_dir
    from .openvino import CACHE_DIRNAME, OpenVinoSession

    cache = store_dir() / CACHE_DIRNAME
    try:
        if not cache.parent.is_dir():
            raise OSError("no model store")  # a model by path with no store yet: make none
        cache.mkdir(exist_ok=True)
        if not os.access(cache, os.W_OK):
            cache = None
    except OSError:
        cache = None
    return OpenVinoSession(path, threads=threads, cache_dir=cache)


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _in_store(path: Path, store: Path) -> bool:
    try:
        return Path(path).resolve().parent == store.resolve()
    except OSError:
        return False


def _openvino_findable() -> bool:
    """True when ``import openvino`` can work, without importing it (a hidden module: False)."""
    import importlib.util

    try:
        return importlib.util.find_spec("openvino") is not None
    except (ImportError, ValueError):  # sys.modules["openvino"] = None raises ValueError
        return False


def _probe_input(info):
    """A (1, 3, H, W) input at the model's native size: a fixed noise image, normalised."""
    import numpy as np

    from ..tensor import to_tensor

    h, w = info.size_hw
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return to_tensor(image, info)

"""Installing posecli and running it for the first time, as a new user would: the wheel in a
clean venv, a fresh HOME, the model downloaded (from a real HTTP server on 127.0.0.1 standing
in for Open Model Zoo's storage), a photo; the dependencies each platform resolves; and what
the CLI leaves in the home folder (only the model store)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers import REPO, SHARED, FileServer, posecli_cmd, run

IR_DIR = SHARED / "models" / "human-pose-estimation-0001" / "FP16-INT8"
PHOTO = SHARED / "data" / "coco-val2017-mini" / "000000000785.jpg"

# (sys_platform-ish name, marker environment, pip --platform tag) for the platforms we ship to
PLATFORMS = {
    "linux-x86_64": ({"platform_system": "Linux", "platform_machine": "x86_64", "sys_platform": "linux"},
                     "manylinux_2_28_x86_64"),
    "windows-amd64": ({"platform_system": "Windows", "platform_machine": "AMD64", "sys_platform": "win32"},
                      "win_amd64"),
    "macos-arm64": ({"platform_system": "Darwin", "platform_machine": "arm64", "sys_platform": "darwin"},
                    "macosx_14_0_arm64"),
    "linux-aarch64": ({"platform_system": "Linux", "platform_machine": "aarch64", "sys_platform": "linux"},
                      # pip does not widen manylinux tags: a glibc 2.35 system (Ubuntu 22.04) takes all these
                      ",".join(f"manylinux_2_{m}_aarch64" for m in range(35, 16, -1)) + ",manylinux2014_aarch64"),
    "windows-arm64": ({"platform_system": "Windows", "platform_machine": "ARM64", "sys_platform": "win32"},
                      "win_arm64"),
}
GPU_RUNTIME = {"linux-x86_64", "windows-amd64"}


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _requirements_for(platform: str, extras: tuple[str, ...] = ()) -> list[str]:
    """The project's requirements (plus ``extras``) that apply on ``platform``, markers dropped."""
    Requirement = pytest.importorskip("packaging.requirements").Requirement
    project = _pyproject()["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    env = {**PLATFORMS[platform][0], "python_version": "3.11", "python_full_version": "3.11.9",
           "implementation_name": "cpython", "platform_python_implementation": "CPython", "os_name": "posix",
           "extra": ""}
    out = []
    for text in reqs:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate(env):
            req.marker = None
            out.append(str(req))
    return out


# -- dependencies per platform --------------------------------------------------------------
@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_one_onnxruntime_per_platform(platform):
    names = [r.split(">")[0].split("=")[0] for r in _requirements_for(platform)]
    runtimes = [n for n in names if n.startswith("onnxruntime")]
    assert runtimes == ["onnxruntime-gpu" if platform in GPU_RUNTIME else "onnxruntime"]


def _dry_run(platform_tag: str, requirements: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
           "--only-binary=:all:", *[a for tag in platform_tag.split(",") for a in ("--platform", tag)],
           "--python-version", "3.11",
           "--target", str(tmp_path / "target"),  # older pips want it with --platform, even for a dry run
           "--report", str(report), "--disable-pip-version-check", *requirements]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def _index_reachable() -> bool:
    import urllib.request

    try:
        urllib.request.urlopen("https://pypi.org/simple/click/", timeout=10).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("platform", ["macos-arm64", "linux-aarch64"])
def test_the_requirements_resolve_to_wheels_on_macos_and_linux_arm(platform, tmp_path):
    """pip's --platform picks wheels for the target but evaluates markers for this machine
    (pypa/pip#10050), so the markers are evaluated here and pip resolves what they leave."""
    if not _index_reachable():
        pytest.skip("the package index (pypi.org) cannot be reached from this machine")
    tag = PLATFORMS[platform][1]
    reqs = _requirements_for(platform, extras=("import",))
    done = _dry_run(tag, reqs, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    wheels = {item["metadata"]["name"].lower(): item["download_info"]["url"].rsplit("/", 1)[1]
              for item in report["install"]}
    assert "onnxruntime" in wheels and "onnxruntime-gpu" not in wheels
    for name in ("onnxruntime", "numpy", "opencv-python", "scipy", "openvino", "onnx"):
        assert wheels[name].endswith(".whl"), wheels[name]
    if platform == "macos-arm64":  # the check can fail: the GPU package has no macOS wheel
        assert _dry_run(tag, ["onnxruntime-gpu>=1.18"], tmp_path).returncode != 0
    # (onnxruntime-gpu 1.31 has Linux aarch64 wheels, for glibc 2.34+ only: posecli keeps
    # the plain onnxruntime there, which installs on every aarch64 Linux with a wheel)


# -- the wheel, a clean venv, a fresh HOME ----------------------------------------------------
@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``python -m build --wheel`` from a copy of the tracked files (the checkout stays clean)."""
    pytest.importorskip("build")
    src = tmp_path_factory.mktemp("src")
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: cannot tell the tracked files")
    for name in listed.stdout.decode().split("\0"):
        if name and (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    # isolated build (setuptools from the index) where it can; else the setuptools installed here
    done = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(src)],
                          capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        done = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                               "--skip-dependency-check", "--outdir", str(out), str(src)],
                              capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (whl,) = out.glob("posecli-*.whl")
    return whl


@pytest.fixture(scope="module")
def clean_venv(wheel, tmp_path_factory) -> Path:
    """A new venv with the wheel installed. Its dependencies come from this environment's
    site-packages (a .pth file; downloading onnxruntime-gpu's 340 MB again proves nothing);
    posecli itself only from the wheel."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=300)
    py = root / "bin" / "python"
    done = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check",
                           str(wheel)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    deps = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    deps = [p for p in deps if Path(p).resolve() != Path(sysconfig.get_paths()["purelib"]).resolve()] + [
        sysconfig.get_paths()["purelib"]]
    # after the venv's own site-packages, so that the wheel's posecli wins over any other
    (Path(site) / "zz-deps.pth").write_text("\n".join(deps) + "\n")
    return root


def _clean_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "POSECLI_MODELS", "XDG_CACHE_HOME", "POSECLI_SHARED", "VIRTUAL_ENV")}
    return {**env, "HOME": str(home)}


def _files_under(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())


@pytest.mark.slow
def test_the_wheel_runs_help_and_version(clean_venv, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    exe = clean_venv / "bin" / "posecli"
    for args in (["--help"], ["models", "download", "--help"]):
        done = subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=tmp_path,
                              env=_clean_env(home), timeout=120, check=False)
        assert done.returncode == 0 and "Usage: posecli" in done.stdout, done.stderr
    done = subprocess.run([str(exe), "--version"], capture_output=True, text=True, cwd=tmp_path,
                          env=_clean_env(home), timeout=120, check=False)
    from posecli import __version__

    assert done.returncode == 0 and done.stdout.strip() == f"posecli, version {__version__}"
    where = subprocess.run([str(clean_venv / "bin" / "python"), "-c", "import posecli; print(posecli.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=_clean_env(home), check=True)
    assert str(clean_venv) in where.stdout  # the wheel's copy, not the checkout's
    assert _files_under(home) == []


@pytest.mark.slow
def test_first_run_from_the_wheel_download_then_a_photo(clean_venv, tmp_path, default_model_int8):
    """Done when: pip install <wheel>, posecli models download --from <server>, posecli image
    photo.jpg works with no other step, and HOME holds nothing but the model store."""
    if not (IR_DIR.is_dir() and PHOTO.is_file()):
        pytest.skip(f"shared IR or photo not found under {SHARED}")
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PHOTO, tmp_path / "photo.jpg")
    exe = str(clean_venv / "bin" / "posecli")
    env = _clean_env(home)
    with FileServer({p.name: p.read_bytes() for p in IR_DIR.iterdir()}) as server:
        done = subprocess.run([exe, "models", "download", "--from", server.url], capture_output=True,
                              text=True, cwd=tmp_path, env=env, timeout=600, check=False)
        assert done.returncode == 0, done.stderr
    done = subprocess.run([exe, "image", "photo.jpg"], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    people = json.loads(done.stdout)["images"][0]["people"]
    # the same people as the checkout finds with the model it imported itself
    assert people and people == json.loads(run("image", PHOTO, "--device", "cpu").stdout)["images"][0]["people"]
    files = _files_under(home)
    assert files and all(f.startswith(".cache/posecli/models/") for f in files), files


@pytest.mark.slow
def test_the_cli_leaves_nothing_in_home_but_the_store(tmp_path):
    """Import (OpenVINO) and an image (onnxruntime) with a fresh HOME: both runtimes write
    telemetry identifiers there unless told not to."""
    pytest.importorskip("openvino")
    if not (IR_DIR.is_dir() and PHOTO.is_file()):
        pytest.skip(f"shared IR or photo not found under {SHARED}")
    home = tmp_path / "home"
    home.mkdir()
    # The package alone, as a wheel installs it: run from the checkout, posecli would use the
    # checkout's models/store (where make keeps the models) instead of the user's cache.
    site = tmp_path / "site"
    shutil.copytree(REPO / "posecli", site / "posecli", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**_clean_env(home), "PYTHONPATH": str(site)}
    for args in (["models", "import", IR_DIR, "--precision", "int8"], ["image", PHOTO, "--device", "cpu"]):
        done = subprocess.run(posecli_cmd(*args), capture_output=True, text=True, cwd=tmp_path, env=env,
                              timeout=300, check=False)
        assert done.returncode == 0, done.stderr
    files = _files_under(home)
    # the model, its optimised graph, the runtime verdict and OpenVINO's compiled cache: all in the store
    assert ".cache/posecli/models/human-pose-estimation-0001.int8.onnx" in files
    assert all(f.startswith(".cache/posecli/models/") for f in files), files


# -- the container image ----------------------------------------------------------------------
def _container_tool() -> tuple[str | None, str]:
    """(podman or docker, "") when it can build and run containers here, else (None, why not)."""
    tool = shutil.which("podman") or shutil.which("docker")
    if tool is None:
        return None, "neither podman nor docker is installed (apt-get install podman)"
    base = "python:3.11-slim"
    if subprocess.run([tool, "image", "exists", base], capture_output=True, check=False).returncode != 0:
        return None, f"base image {base} is not available locally and registries are out of reach from the tests"
    probe = subprocess.run([tool, "run", "--rm", "--network", "none", base, "python", "-c", "print(1)"],
                           capture_output=True, text=True, timeout=120, check=False)
    if probe.returncode != 0:
        return None, f"{tool} cannot run a container here: {probe.stderr.strip().splitlines()[-1:]}"
    return tool, ""


@pytest.mark.slow
def test_the_cpu_image_builds_and_finds_people(tmp_path):
    """``docker build`` with the model served on 127.0.0.1, then ``docker run ... image``."""
    tool, why = _container_tool()
    if tool is None:
        pytest.skip(why)
    if not (IR_DIR.is_dir() and PHOTO.is_file()):
        pytest.skip(f"shared IR or photo not found under {SHARED}")
    with FileServer({p.name: p.read_bytes() for p in IR_DIR.iterdir()}) as server:
        done = subprocess.run([tool, "build", "--network", "host", "--build-arg", f"MODEL_FROM={server.url}",
                               "-t", "posecli-test", str(REPO)], capture_output=True, text=True, timeout=1800,
                              check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    shutil.copy(PHOTO, tmp_path / "photo.jpg")
    done = subprocess.run([tool, "run", "--rm", "--network", "none", "-v", f"{tmp_path}:/data", "posecli-test",
                           "image", "/data/photo.jpg"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["images"][0]["people"]

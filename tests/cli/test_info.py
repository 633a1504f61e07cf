"""``posecli info`` and posecli.network.cpu: the CPU's name and instruction sets from
/proc/cpuinfo texts (x86, ARM, none), the command's report with a real (tiny) model."""

import json

from click.testing import CliRunner

from posecli.cli import main
from posecli.network.cpu import cpu_facts, parse_cpuinfo

X86 = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Core(TM) i5-8250U CPU @ 1.60GHz
flags\t\t: fpu vme sse sse2 avx avx2 fma
processor\t: 1
model name\t: Intel(R) Core(TM) i5-8250U CPU @ 1.60GHz
flags\t\t: fpu vme sse sse2 avx avx2 fma avx512f
"""
ARM = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp
CPU implementer\t: 0x41
"""


def test_an_avx2_laptop_is_read_from_its_first_processor(tmp_path):
    name, flags = parse_cpuinfo(X86)
    assert name == "Intel(R) Core(TM) i5-8250U CPU @ 1.60GHz" and "avx2" in flags and "avx512f" not in flags
    (tmp_path / "cpuinfo").write_text(X86)
    facts = cpu_facts(tmp_path / "cpuinfo", machine="x86_64")
    assert facts.isa == {"AVX2": True, "AVX-512": False, "AVX-512 VNNI": False, "AVX-VNNI": False, "AMX": False}
    assert facts.speed_class == "AVX2"


def test_an_arm_cpu_reports_its_own_sets(tmp_path):
    (tmp_path / "cpuinfo").write_text(ARM)
    facts = cpu_facts(tmp_path / "cpuinfo", machine="aarch64")
    assert facts.isa == {"NEON": True, "ARM dot product": True, "SVE": False}
    assert facts.speed_class == "aarch64"


def test_no_cpuinfo_means_unknown_not_guessed(tmp_path):
    facts = cpu_facts(tmp_path / "missing")
    assert facts.isa is None and facts.speed_class == "unknown" and facts.name


def test_info_reports_cpu_runtime_and_frames_per_s(tiny_model):
    r = CliRunner().invoke(main, ["info", "-m", str(tiny_model), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["cpu"] and doc["runtime"] == "onnxruntime" and "outside the store" in doc["runtime_why"]
    assert set(doc["frames_per_s"]) == {"fastest", "fast", "accurate"}
    assert all(v > 0 for v in doc["frames_per_s"].values())
    r = CliRunner().invoke(main, ["info", "-m", str(tiny_model), "--no-measure"])
    assert r.exit_code == 0 and "instruction sets:" in r.output and "frames/s" not in r.output


def test_info_on_a_missing_model_is_one_line(tmp_path):
    r = CliRunner().invoke(main, ["info", "-m", str(tmp_path / "none.onnx"), "--no-measure"])
    assert r.exit_code == 1 and r.output.startswith("Error: ") and "Traceback" not in r.output

"""What the CPU is and which vector instructions it has (what the network's speed depends on).

Read from ``/proc/cpuinfo`` on Linux (x86 ``flags``, ARM ``Features``); elsewhere the name
comes from :func:`platform.processor` and the instruction sets are unknown (None), never
guessed. The classes posecli's speed figures are given for (docs/realtime.md):

* ``AVX2``: most PCs and laptops, and AMD before Zen 4: INT8 gains little, the network
  costs most of a frame: ``--mode fastest`` runs it less often;
* ``AVX-512 VNNI``: INT8 dot products in one instruction (Intel Xeons since Cascade Lake,
  AMD Zen 4 and 5); ``AVX-VNNI`` is the same on AVX2 registers (Intel Alder Lake and later);
* ``AMX``: Intel Xeons since Sapphire Rapids: tile matrix units for INT8 and BF16.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")

#: Instruction set -> the /proc/cpuinfo flags that each mean it (any one of them).
ISA_FLAGS = {
    "AVX2": ("avx2",),
    "AVX-512": ("avx512f",),
    "AVX-512 VNNI": ("avx512_vnni",),
    "AVX-VNNI": ("avx_vnni",),
    "AMX": ("amx_int8", "amx_tile"),
    "NEON": ("asimd", "neon"),
    "ARM dot product": ("asimddp",),
    "SVE": ("sve",),
}
X86_SETS = ("AVX2", "AVX-512", "AVX-512 VNNI", "AVX-VNNI", "AMX")
ARM_SETS = ("NEON", "ARM dot product", "SVE")


@dataclass(frozen=True)
class CpuFacts:
    """``name``: the CPU's model name; ``cores``: logical CPUs; ``machine``: x86_64, aarch64, ...;
    ``isa``: instruction set -> present (None where it could not be read)."""

    name: str
    cores: int
    machine: str
    isa: dict[str, bool] | None

    @property
    def speed_class(self) -> str:
        """The class posecli's speed figures are given for: AMX, AVX-512 VNNI, AVX2 or unknown."""
        if not self.isa:
            return "unknown"
        for name in ("AMX", "AVX-512 VNNI", "AVX2"):
            if self.isa.get(name):
                return name
        return "below AVX2" if self.machine.lower() in ("x86_64", "amd64", "i686", "x86") else self.machine


def parse_cpuinfo(text: str) -> tuple[str | None, set[str]]:
    """(model name or None, the first processor's flags) of a /proc/cpuinfo text."""
    name, flags = None, None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if name is None and key in ("model name", "hardware", "cpu model"):
            name = value.strip() or None
        elif flags is None and key in ("flags", "features"):
            flags = set(value.split())
    return name, flags or set()


def cpu_facts(cpuinfo: Path = CPUINFO, machine: str | None = None) -> CpuFacts:
    """The CPU of this machine (see the module docstring for where each fact comes from);
    ``cpuinfo``, ``machine``: another machine's /proc/cpuinfo and architecture."""
    import os

    machine = machine or platform.machine() or "unknown"
    try:
        name, flags = parse_cpuinfo(cpuinfo.read_text(errors="replace"))
    except OSError:
        name, flags = None, None
    name = name or platform.processor() or machine
    if flags is None or not flags:
        isa = None
    else:
        sets = ARM_SETS if machine.lower() in ("aarch64", "arm64") else X86_SETS
        isa = {s: any(f in flags for f in ISA_FLAGS[s]) for s in sets}
    return CpuFacts(name=name, cores=os.cpu_count() or 1, machine=machine, isa=isa)

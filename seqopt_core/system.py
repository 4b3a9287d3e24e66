"""What this machine and process have: memory, CPU, load. One place, through psutil.

Every reading works on Linux, macOS and Windows (psutil), and returns ``None``
where the platform cannot tell, so callers print "unknown" rather than fail.
No torch here: the benchmarks, the A/B harness and the engine's batch sizing
all read the machine through these functions.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import psutil

_PROCESS = psutil.Process()


def resident_bytes() -> int | None:
    """This process's resident set size now (cheap: one system call, no lock)."""
    try:
        return int(_PROCESS.memory_info().rss)
    except (psutil.Error, OSError):  # pragma: no cover - a process can always read itself
        return None


def available_memory_bytes() -> int | None:
    """Memory the system can give a new allocation without swapping
    (``MemAvailable`` on Linux, free + inactive on macOS)."""
    try:
        return int(psutil.virtual_memory().available)
    except (psutil.Error, OSError):  # pragma: no cover
        return None


def total_memory_bytes() -> int | None:
    """Physical memory of the machine."""
    try:
        return int(psutil.virtual_memory().total)
    except (psutil.Error, OSError):  # pragma: no cover
        return None


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (other work on the machine makes timings noisy)."""
    try:
        return [round(x, 2) for x in psutil.getloadavg()]
    except (psutil.Error, OSError, AttributeError):  # pragma: no cover
        return None


def cpu_counts() -> dict[str, int | None]:
    """Logical and physical CPU counts, and the CPUs this process may run on."""
    try:
        usable = len(_PROCESS.cpu_affinity())
    except (psutil.Error, OSError, AttributeError):  # macOS has no affinity
        usable = os.cpu_count()
    return {"logical": psutil.cpu_count(logical=True), "physical": psutil.cpu_count(logical=False),
            "usable": usable}


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The processor's marketing name ("Intel(R) Xeon(R) ...", "Apple M2"), else its architecture.

    psutil does not report it, so this asks the platform: ``/proc/cpuinfo`` on
    Linux, ``sysctl`` on macOS, ``platform.processor()`` elsewhere.
    """
    if sys.platform.startswith("linux"):
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
    elif sys.platform == "darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                 text=True, timeout=5).stdout.strip()
            if out:
                return out
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown"

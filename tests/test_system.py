"""Machine readings come from one helper (seqopt_core.system, psutil), so they work on
macOS and Windows too, and no other module parses /proc by hand."""

from __future__ import annotations

import re
from pathlib import Path

from seqopt_core import system

REPO = Path(__file__).resolve().parents[1]


def test_readings_are_plausible():
    rss = system.resident_bytes()
    total = system.total_memory_bytes()
    available = system.available_memory_bytes()
    assert rss and total and available
    assert 1 << 20 < rss < total and 0 < available <= total
    counts = system.cpu_counts()
    assert counts["logical"] >= 1 and 1 <= counts["usable"] <= counts["logical"]
    assert system.cpu_model() and len(system.load_average()) == 3


def test_resident_set_grows_with_an_allocation():
    before = system.resident_bytes()
    block = bytearray(64 << 20)
    block[::4096] = b"x" * len(block[::4096])  # touch every page
    assert system.resident_bytes() - before > 48 << 20
    del block


def test_peak_resident_measures_a_block():
    from seqopt_core.harness.memory import PeakResident

    with PeakResident(interval=0.005) as peak:
        block = bytearray(32 << 20)
        block[::4096] = b"x" * len(block[::4096])
    assert peak.used > 24 << 20


def test_no_other_module_reads_proc_or_writes_toml_by_hand():
    sources = [p for d in ("seqopt_core", "plugins", "benchmarks") for p in (REPO / d).rglob("*.py")
               if ".cache" not in p.parts]  # benchmarks/.cache holds checkpoints and the peer's venv
    offenders = [str(p.relative_to(REPO)) for p in sources
                 if p.name != "system.py" and re.search(r"/proc/(self|meminfo|cpuinfo|\d)", p.read_text())]
    assert offenders == []
    assert "def _to_toml" not in (REPO / "seqopt_core" / "cli.py").read_text()

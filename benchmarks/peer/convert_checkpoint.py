"""Write a seqopt checkpoint folder (safetensors) as the ``.pt`` files chatterbox-streaming loads.

chatterbox-streaming 0.1.2's ``ChatterboxTTS.from_local`` reads ``ve.pt``,
``t3_cfg.pt``, ``s3gen.pt`` (``torch.load`` of a state dict, each loaded with
``strict=True``), ``tokenizer.json`` and ``conds.pt``. seqopt's folders (the
released layout, written at random by ``seqopt make-checkpoint``) hold the same
tensors as ``ve.safetensors``, ``t3_cfg.safetensors`` and ``s3gen.safetensors``.
This script copies every tensor unchanged into a ``.pt`` state dict and copies
``tokenizer.json`` and ``conds.pt`` as they are, so both contenders run on the
same weights.

The only tensors it may add are the two S3Gen declares recomputable
(``S3Gen.ignore_state_dict_missing``: the S3 tokenizer's mel filterbank and
window, which some released files omit and seqopt's loader tolerates): the
fork's strict load needs them, so a missing one is taken from a freshly built
S3Gen (they are computed, not learned). With ``--check`` (default) each written
file is then loaded with ``strict=True`` into the modules of whichever
``chatterbox`` is importable (run it with the peer venv's Python to check
against the fork itself)::

    benchmarks/.cache/peer_venv/bin/python benchmarks/peer/convert_checkpoint.py \\
        benchmarks/.cache/ck_full benchmarks/.cache/peer_ck_full

A folder already converted from the same files (same sizes and modification
times, recorded in ``converted_from.json``) is left as it is.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

#: (seqopt's safetensors file, the fork's .pt file)
WEIGHT_FILES = (("ve.safetensors", "ve.pt"), ("t3_cfg.safetensors", "t3_cfg.pt"),
                ("s3gen.safetensors", "s3gen.pt"))
COPIED_FILES = ("tokenizer.json", "conds.pt")
RECORD_FILE = "converted_from.json"
#: S3Gen buffers that are computed at construction, not learned (upstream's list).
S3GEN_RECOMPUTABLE = ("tokenizer._mel_filters", "tokenizer.window")


def source_signature(source: Path) -> dict[str, list[int]]:
    """Size and modification time (ns) of every source file: what the conversion depends on."""
    out = {}
    for name in [s for s, _ in WEIGHT_FILES] + list(COPIED_FILES):
        path = source / name
        if not path.is_file():
            raise SystemExit(f"error: {path} is missing; a seqopt checkpoint folder has "
                             f"{', '.join(s for s, _ in WEIGHT_FILES)}, {', '.join(COPIED_FILES)}")
        stat = path.stat()
        out[name] = [stat.st_size, stat.st_mtime_ns]
    return out


def up_to_date(source: Path, target: Path) -> bool:
    record = target / RECORD_FILE
    if not record.is_file() or not all((target / pt).is_file() for _, pt in WEIGHT_FILES):
        return False
    try:
        return json.loads(record.read_text())["files"] == source_signature(source)
    except (ValueError, KeyError):
        return False


def recomputable_s3gen_tensors(missing: list[str]) -> dict[str, Any]:
    """The missing recomputable S3Gen buffers, from a freshly built S3Gen."""
    from chatterbox.models.s3gen import S3Gen

    fresh = S3Gen().state_dict()
    return {k: fresh[k].clone() for k in missing}


def convert_weights(source: Path, target: Path, log: Any) -> dict[str, int]:
    """Each safetensors file as a ``.pt`` state dict; returns the tensor count per file."""
    import torch
    from safetensors.torch import load_file

    counts = {}
    for st_name, pt_name in WEIGHT_FILES:
        started = time.perf_counter()
        state = load_file(str(source / st_name))
        if pt_name == "s3gen.pt":
            missing = [k for k in S3GEN_RECOMPUTABLE if k not in state]
            if missing:
                state.update(recomputable_s3gen_tensors(missing))
                log(f"  s3gen: added the recomputable buffers {missing} from a fresh S3Gen")
        tmp = target / (pt_name + ".tmp")
        torch.save(state, tmp)
        tmp.replace(target / pt_name)
        counts[pt_name] = len(state)
        log(f"  {st_name} -> {pt_name}: {len(state)} tensors in {time.perf_counter() - started:.1f} s")
        del state
    for name in COPIED_FILES:
        shutil.copyfile(source / name, target / name)
    return counts


def check_strict_load(target: Path, log: Any) -> str:
    """Load each ``.pt`` with ``strict=True`` into the importable chatterbox's modules
    (what ``ChatterboxTTS.from_local`` does); returns the chatterbox distribution checked."""
    import torch
    from importlib import metadata

    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.voice_encoder import VoiceEncoder

    for name, build in (("ve.pt", VoiceEncoder), ("t3_cfg.pt", T3), ("s3gen.pt", S3Gen)):
        started = time.perf_counter()
        module = build()
        module.load_state_dict(torch.load(target / name, map_location="cpu", weights_only=True), strict=True)
        log(f"  {name}: loads with strict=True ({time.perf_counter() - started:.1f} s)")
        del module
    for dist in ("chatterbox-streaming", "chatterbox-tts"):
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return "chatterbox (unknown distribution)"


def convert(source: Path, target: Path, *, check: bool = True, force: bool = False) -> dict[str, Any]:
    """Convert ``source`` into ``target`` (created) unless it is up to date; the record."""
    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    signature = source_signature(source)
    if not force and up_to_date(source, target):
        log(f"{target} is already converted from {source}; nothing to do (--force redoes it)")
        return json.loads((target / RECORD_FILE).read_text())
    target.mkdir(parents=True, exist_ok=True)
    (target / RECORD_FILE).unlink(missing_ok=True)
    log(f"converting {source} -> {target}")
    started = time.perf_counter()
    counts = convert_weights(source, target, log)
    record: dict[str, Any] = {"source": str(source), "files": signature, "tensors": counts,
                              "convert_seconds": round(time.perf_counter() - started, 1)}
    if check:
        record["checked_with"] = check_strict_load(target, log)
    (target / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("source", type=Path, help="seqopt checkpoint folder (safetensors)")
    parser.add_argument("target", type=Path, help="folder for the .pt files (created)")
    parser.add_argument("--no-check", action="store_true", help="skip the strict-load check")
    parser.add_argument("--force", action="store_true", help="convert even if up to date")
    args = parser.parse_args(argv)
    record = convert(args.source.resolve(), args.target.resolve(), check=not args.no_check, force=args.force)
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One full-size S3Gen call with oneDNN on versus off, interleaved: one cause checked of ``baseline`` vs the fork.

seqopt's vocoder runs S3Gen with oneDNN (mkldnn) disabled on a CPU
(``plugins/chatterbox/vocoder.py``, ``_native_cpu_kernels``: oneDNN caches
kernels per input length, and memory grew with every new length); the fork
leaves torch's default, oneDNN on. This script times the same call both ways in
one process (seqopt's venv, upstream chatterbox-tts S3Gen, the checkpoint's
built-in voice), alternating off / on, on a length oneDNN has not seen yet
("new") and then on the same length again ("seen")::

    python benchmarks/peer/s3gen_onednn_ab.py --threads 2 --tokens 50 --repeats 2

One untimed call per mode comes first, on another length (global set-up). The
speech tokens are random ids below 6,561. Random weights: timings only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CHECKPOINT = REPO_ROOT / "benchmarks" / ".cache" / "ck_full"
SPEECH_VOCAB = 6561


def timed_call(s3gen: Any, ref: dict[str, Any], tokens: Any, onednn: bool) -> float:
    """Seconds of one ``s3gen.inference`` on ``tokens`` with oneDNN ``onednn``."""
    import torch

    torch.manual_seed(0)
    with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=onednn):
        started = time.perf_counter()
        s3gen.inference(speech_tokens=tokens, ref_dict=ref)
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--tokens", type=int, default=50, help="speech tokens per call (default 50)")
    parser.add_argument("--repeats", type=int, default=2, help="timed 'seen' pairs after the 'new' one")
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the samples")
    args = parser.parse_args(argv)
    if args.tokens < 2 or args.repeats < 1:
        raise SystemExit("error: --tokens must be at least 2 and --repeats at least 1")

    import torch

    sys.path.insert(0, str(REPO_ROOT))
    from seqopt_plugins.chatterbox.checkpoint import load_checkpoint

    torch.set_num_threads(args.threads)
    loaded = load_checkpoint(args.checkpoint)
    if loaded.conds is None:
        raise SystemExit(f"error: {args.checkpoint} has no conds.pt (the built-in voice)")
    s3gen, ref = loaded.s3gen, loaded.conds.gen
    ids = torch.randint(0, SPEECH_VOCAB, (1, args.tokens), generator=torch.Generator().manual_seed(0))
    for onednn in (False, True):  # global set-up, on a length the timed calls do not use
        timed_call(s3gen, ref, ids[:, :-1], onednn)
    samples = []
    for kind in ["new"] + ["seen"] * args.repeats:
        for onednn in (False, True):
            seconds = timed_call(s3gen, ref, ids, onednn)
            samples.append({"length": kind, "onednn": onednn, "seconds": seconds})
            print(f"{args.tokens} tokens, length {kind}, oneDNN {'on ' if onednn else 'off'}: {seconds:.2f} s",
                  flush=True)
    pairs = [(off["seconds"], on["seconds"]) for off, on in zip(samples[::2], samples[1::2])]
    print("on / off per pair: " + ", ".join(f"{b / a:.3f}" for a, b in pairs))
    if args.out:
        args.out.write_text(json.dumps({"threads": args.threads, "tokens": args.tokens,
                                        "torch": torch.__version__, "samples": samples}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

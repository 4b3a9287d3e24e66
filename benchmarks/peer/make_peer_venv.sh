#!/usr/bin/env bash
# Make benchmarks/.cache/peer_venv: a virtual environment with the real
# chatterbox-streaming 0.1.2 (PyPI), the peer contender of bench_engine --peer.
#
#   bash benchmarks/peer/make_peer_venv.sh            # from the repository root
#   PEER_PYTHON=/path/to/python3.11 bash benchmarks/peer/make_peer_venv.sh
#
# It lives apart from seqopt's environment because chatterbox-streaming pins
# versions seqopt does not use: transformers==4.46.3 (seqopt: 5.x), librosa==0.10.0,
# numpy~=1.26.0, torch==2.6.0 / torchaudio==2.6.0, diffusers==0.29.0,
# resemble-perth==1.0.1, conformer==0.3.2, omegaconf==2.3.0, resampy==0.4.3,
# sounddevice==0.5.2 (never imported by the model code; PortAudio is not needed),
# s3tokenizer (unpinned). torch 2.6.0 from PyPI on Linux x86-64 is the CUDA 12.4
# build: it runs on the CPU as is, and it is the build seqopt's own venv has, so
# both contenders use the same CPU kernels.
#
# pip's download cache is used as usual (no --no-cache-dir): a second run, or a
# venv made after seqopt's, reuses the downloaded wheels. Nothing of the fork's
# code is copied into the repository: it is installed here, in a git-ignored folder.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${PEER_VENV:-$REPO_ROOT/benchmarks/.cache/peer_venv}"
PYTHON="${PEER_PYTHON:-python3}"
PEER_PACKAGE="chatterbox-streaming==0.1.2"

if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 9)' 2>/dev/null; then
    echo "error: $PYTHON is not a Python 3.9+ interpreter; set PEER_PYTHON" >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV with $("$PYTHON" --version)" >&2
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --upgrade pip >&2
"$VENV/bin/python" -m pip install "$PEER_PACKAGE" "setuptools<81" >&2
# a CPU-usable torch, the model code importable, its pins as installed
# (offline, with its own Hugging Face home: nothing is fetched, the user's cache is not touched)
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HOME="$VENV/hf_home" "$VENV/bin/python" - <<'PY'
import torch, transformers
from importlib import metadata
from chatterbox.tts import ChatterboxTTS  # noqa: F401  (the fork's streaming class)
torch.ones(2, 2) @ torch.ones(2, 2)  # runs on the CPU
print("peer venv ready:", ", ".join(f"{n} {metadata.version(n)}" for n in
      ("chatterbox-streaming", "torch", "transformers", "diffusers", "librosa", "numpy")))
PY

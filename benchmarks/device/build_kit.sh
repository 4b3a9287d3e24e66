#!/usr/bin/env bash
# Build the offline kit in .gpu/ (git-ignored through .git/info/exclude) that
# run_gpu.sh installs on the GPU machine: wheels for Python 3.12 / manylinux
# x86-64 of what seqopt and the Chatterbox modules it imports need there and the
# machine lacks, plus the Chatterbox tokenizer. Run from the repository root on a
# machine that reaches PyPI:   bash benchmarks/device/build_kit.sh
# PY: a Python 3.12 with pip (default /root/.pyenv/versions/3.12.1/bin/python).
# TOKENIZER: the tokenizer to copy (default ../shared/data/chatterbox_en_tokenizer.json).
set -euo pipefail

PY=${PY:-/root/.pyenv/versions/3.12.1/bin/python}
TOKENIZER=${TOKENIZER:-../shared/data/chatterbox_en_tokenizer.json}
KIT=.gpu
WHL=$KIT/whl
FALLBACK=$KIT/whl/fallback

mkdir -p .git/info
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >> .git/info/exclude
rm -rf "$KIT"
mkdir -p "$WHL" "$FALLBACK"

dl() {  # dl DEST NAME==VERSION...
  local dest=$1; shift
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --abi cp312 --abi abi3 --abi none \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d "$dest" "$@"
}

# Always installed (they shadow the machine's copies where it has one).
#  transformers 5.2.0: chatterbox-tts 0.1.7 pins it and seqopt's attention code is
#    written against it; it refuses tokenizers > 0.23.0 at import, hence tokenizers.
#  torchaudio 2.11.0: matches the machine's torch 2.11.0 (not the venv's 2.6.0).
#  the rest: the versions in the project's .venv.
dl "$WHL" \
  transformers==5.2.0 tokenizers==0.22.2 \
  chatterbox-tts==0.1.7 conformer==0.3.2 diffusers==0.29.0 omegaconf==2.4.0 \
  s3tokenizer==0.3.0 torchaudio==2.11.0 \
  librosa==0.11.0 audioread==3.1.0 decorator==5.3.1 pooch==1.9.0 \
  soundfile==0.14.0 soxr==1.1.0 \
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5

# Installed only where the machine lacks them or has an older version than
# needed (run_gpu.sh decides): dependencies the machine most likely has already.
#  setuptools 81.0.0: the last with pkg_resources, which perth imports (82 removed
#    it); installed only where the machine's setuptools has no pkg_resources.
dl "$FALLBACK" cffi==2.1.1 pycparser==3.12 platformdirs==4.14.8 typing-extensions==4.16.0 \
  setuptools==81.0.0

# resemble-perth 1.0.1 ships a 37 MB watermark checkpoint. chatterbox.tts imports
# perth, but the benchmarks run with watermark = false and never load it, so the
# kit carries the package without the checkpoint, as version 1.0.1+noweights.
tmp=$(mktemp -d)
dl "$tmp" resemble-perth==1.0.1
"$PY" - "$tmp"/resemble_perth-1.0.1-py3-none-any.whl "$WHL" <<'EOF'
import base64, hashlib, sys, zipfile
src, dest = sys.argv[1], sys.argv[2]
old, new = "resemble_perth-1.0.1", "resemble_perth-1.0.1+noweights"
out = f"{dest}/{new}-py3-none-any.whl"
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
    record = []
    for info in zin.infolist():
        name = info.filename
        if name.endswith(".pth.tar") or name.endswith("/RECORD"):
            continue
        data = zin.read(name)
        name = name.replace(f"{old}.dist-info/", f"{new}.dist-info/")
        if name.endswith(".dist-info/METADATA"):
            data = data.replace(b"\nVersion: 1.0.1\n", b"\nVersion: 1.0.1+noweights\n", 1)
        zout.writestr(name, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{new}.dist-info/RECORD,,")
    zout.writestr(f"{new}.dist-info/RECORD", "\n".join(record) + "\n")
print("wrote", out)
EOF
rm -rf "$tmp"

cp "$TOKENIZER" "$KIT/tokenizer.json"
ls -l "$WHL" "$FALLBACK"
du -sh "$KIT"

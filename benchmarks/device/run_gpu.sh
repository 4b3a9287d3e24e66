#!/usr/bin/env bash
# One-shot GPU benchmark run, from the repository root:
#   OUT=/some/folder bash benchmarks/device/run_gpu.sh
# Installs the offline kit in .gpu/ (see README.md) into $SITE, writes a
# full-size random checkpoint, then runs bench_attention, bench_batch and
# bench_engine, each under its own time limit, and exits 0 whatever they did.
# Files written directly in $OUT (8 at most): env.txt, setup.log and
# <name>.json + <name>.log for name = attention, batch, engine.
#
# Environment (all optional except OUT):
#   DEVICE=cuda        --device for every benchmark (cpu for a local check)
#   QUICK=0            1: tiny checkpoint and --quick everywhere (a smoke run)
#   SKIP_INSTALL=0     1: install nothing, use the python3 first on PATH as it is
#   SITE=/tmp/site     where the kit and seqopt are installed (pip --target)
#   CKPT=/tmp/ck_full  (QUICK: /tmp/ck_tiny) checkpoint folder; kept if complete
#   TOTAL_S=540        wall-clock budget of the whole script; each benchmark's
#                      limit is cut to what is left of it (minus 15 s)
#   T_ATTN=180 T_BATCH=240 T_ENGINE=240   per-benchmark limits in seconds
#   ATTN_ARGS, BATCH_ARGS, ENGINE_ARGS     replace (ATTN, ENGINE) or extend
#                      (BATCH) the default arguments shown below
set -u

: "${OUT:?set OUT to the output folder}"
mkdir -p "$OUT"
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
SKIP_INSTALL=${SKIP_INSTALL:-0}
SITE=${SITE:-/tmp/site}
TOTAL_S=${TOTAL_S:-540}
T_ATTN=${T_ATTN:-180}
T_BATCH=${T_BATCH:-240}
T_ENGINE=${T_ENGINE:-240}
KIT=$PWD/.gpu
PY=python3
SETUP_LOG=$OUT/setup.log
: > "$SETUP_LOG"

if [ "$QUICK" = 1 ]; then
  CKPT=${CKPT:-/tmp/ck_tiny}; SCALE=tiny; Q=--quick
  ATTN_ARGS=${ATTN_ARGS:---floor}
  ENGINE_ARGS=${ENGINE_ARGS:-}
else
  CKPT=${CKPT:-/tmp/ck_full}; SCALE=full; Q=
  ATTN_ARGS=${ATTN_ARGS:---floor --repeats 3 --contexts 200 500 1000 2000}
  ENGINE_ARGS=${ENGINE_ARGS:---chars 500 2000}
fi
BATCH_ARGS=${BATCH_ARGS:-}

log() { echo "$@" | tee -a "$SETUP_LOG"; }
left() { echo $(( TOTAL_S - SECONDS )); }

log "== $(date -u +%FT%TZ) run_gpu.sh DEVICE=$DEVICE QUICK=$QUICK SITE=$SITE CKPT=$CKPT"
gpus() { if command -v nvidia-smi >/dev/null; then nvidia-smi -L 2>&1; else echo "nvidia-smi: not found"; fi; }
gpus | tee -a "$SETUP_LOG"

# -- install --------------------------------------------------------------------------------
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
export SEQOPT_TOKENIZER=${SEQOPT_TOKENIZER:-$KIT/tokenizer.json}
if [ "$SKIP_INSTALL" != 1 ]; then
  rm -rf "$SITE"
  PIP=("$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade
       --disable-pip-version-check --target "$SITE")
  log "-- installing the kit into $SITE"
  "${PIP[@]}" "$KIT"/whl/*.whl >>"$SETUP_LOG" 2>&1 || log "!! kit install failed (rc $?)"
  # Fallback wheels: only where the machine lacks the package or has it too old.
  mapfile -t FALLBACK < <("$PY" - "$KIT/whl/fallback" <<'EOF'
import importlib.util, pathlib, sys
from importlib import metadata
from packaging.version import Version
need = {"cffi": "1.0", "pycparser": "0", "platformdirs": "2.5.0", "typing_extensions": "4.16.0"}
for whl in sorted(pathlib.Path(sys.argv[1]).glob("*.whl")):
    name = whl.name.split("-")[0]
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        have = None
    if name == "setuptools":  # wanted only for pkg_resources (perth imports it)
        if importlib.util.find_spec("pkg_resources") is None:
            print(whl)
            print(f"fallback setuptools: machine has {have} without pkg_resources, "
                  f"installing {whl.name}", file=sys.stderr)
        continue
    if have is None or Version(have) < Version(need.get(name.lower(), "0")):
        print(whl)
        print(f"fallback {name}: machine has {have}, installing {whl.name}", file=sys.stderr)
EOF
  )
  log "-- fallback wheels needed: ${FALLBACK[*]##*/}"
  if [ "${#FALLBACK[@]}" -gt 0 ]; then
    "${PIP[@]}" "${FALLBACK[@]}" >>"$SETUP_LOG" 2>&1 || log "!! fallback install failed (rc $?)"
  fi
  log "-- installing seqopt (this working tree) into $SITE"
  "${PIP[@]}" --no-build-isolation . >>"$SETUP_LOG" 2>&1 || log "!! seqopt install failed (rc $?)"
  export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
  export PATH=$SITE/bin:$PATH
fi

# -- environment record ---------------------------------------------------------------------
{
  echo "date: $(date -u +%FT%TZ)"; echo "host: $(hostname)"
  gpus
  command -v nvidia-smi >/dev/null &&
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  echo "python: $(command -v $PY)"; echo "PYTHONPATH=${PYTHONPATH:-}"
  "$PY" - <<'EOF'
import sys
from importlib import metadata
print("python", sys.version.split()[0])
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
except Exception as exc:
    print("torch import failed:", repr(exc))
for mod in ("transformers", "tokenizers", "torchaudio", "seqopt_plugins.chatterbox.engine"):
    try:
        m = __import__(mod, fromlist=["_"])
        print(mod, getattr(m, "__version__", "ok"), "from", getattr(m, "__file__", "?"))
    except Exception as exc:
        print(mod, "import failed:", repr(exc))
EOF
  echo "-- pip list (without $SITE)"
  env -u PYTHONPATH "$PY" -m pip list --disable-pip-version-check 2>/dev/null
  if [ -d "$SITE" ] && [ "$SKIP_INSTALL" != 1 ]; then
    echo "-- pip list --path $SITE"
    "$PY" -m pip list --disable-pip-version-check --path "$SITE" 2>/dev/null
  fi
} > "$OUT/env.txt" 2>&1
sed -n '/^python /,/^-- pip list/p' "$OUT/env.txt" | sed '$d' | tee -a "$SETUP_LOG"

# -- checkpoint ------------------------------------------------------------------------------
if [ -f "$CKPT/conds.pt" ] && [ -f "$CKPT/t3_cfg.safetensors" ] && [ -f "$CKPT/s3gen.safetensors" ]; then
  log "-- reusing the checkpoint in $CKPT"
else
  log "-- make-checkpoint $CKPT --scale $SCALE"
  rm -rf "$CKPT"
  timeout -k 10 300 "$PY" -m seqopt_core.cli make-checkpoint "$CKPT" --scale "$SCALE" \
    >>"$SETUP_LOG" 2>&1 || log "!! make-checkpoint failed (rc $?)"
fi

# -- benchmarks ------------------------------------------------------------------------------
declare -A RESULT
run_bench() {  # run_bench NAME LIMIT_S SCRIPT ARGS...
  local name=$1 limit=$2 script=$3; shift 3
  local rest=$(( $(left) - 15 ))
  [ "$rest" -lt "$limit" ] && limit=$rest
  if [ "$limit" -lt 20 ]; then
    RESULT[$name]="skipped (limit ${limit}s under 20 s)"; log "-- $name: skipped, limit ${limit}s under 20 s"; return
  fi
  rm -f "$OUT/$name.json"
  echo "== $name: limit ${limit}s: $PY $script $*" | tee "$OUT/$name.log"
  local t0=$SECONDS
  timeout -k 10 "$limit" "$PY" "$script" "$@" --out "$OUT/$name.json" 2>&1 | tee -a "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  local took=$(( SECONDS - t0 ))
  if [ "$rc" = 0 ] && [ -s "$OUT/$name.json" ]; then RESULT[$name]="ok (${took}s)"
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then RESULT[$name]="TIMED OUT after ${took}s (limit ${limit}s)"
  else RESULT[$name]="FAILED rc=$rc (${took}s)"; fi
  echo "== $name: ${RESULT[$name]}" | tee -a "$OUT/$name.log"
}

# shellcheck disable=SC2086  # the *_ARGS are word lists on purpose
run_bench attention "$T_ATTN" benchmarks/bench_attention.py $Q --checkpoint "$CKPT" \
  --device "$DEVICE" $ATTN_ARGS
# shellcheck disable=SC2086
run_bench batch "$T_BATCH" benchmarks/bench_batch.py $Q --checkpoint "$CKPT" \
  --device "$DEVICE" $BATCH_ARGS
# bench_engine skips its largest texts when its own estimate exceeds --budget-minutes:
# give it its time limit less a margin for loading and warm-up (ENGINE_ARGS can override).
limit=$T_ENGINE; rest=$(( $(left) - 15 )); [ "$rest" -lt "$limit" ] && limit=$rest
budget=$(awk -v s="$limit" 'BEGIN { m = (s - 90) / 60; if (m < 0.5) m = 0.5; printf "%.1f", m }')
# shellcheck disable=SC2086
run_bench engine "$T_ENGINE" benchmarks/bench_engine.py $Q --checkpoint "$CKPT" \
  --device "$DEVICE" --budget-minutes "$budget" $ENGINE_ARGS

# -- summary ---------------------------------------------------------------------------------
{
  echo "-- summary (${SECONDS}s in all)"
  for name in attention batch engine; do echo "$name: ${RESULT[$name]:-not run}"; done
} | tee -a "$SETUP_LOG" >> "$OUT/env.txt"
cat "$OUT/env.txt" | sed -n '/^-- summary/,$p'
ls -l "$OUT"
exit 0

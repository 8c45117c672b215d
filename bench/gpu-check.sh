#!/usr/bin/env bash
# Issue 16's GPU check, for a machine with an NVIDIA GPU and a Python whose torch is a CUDA build
# (pip's Linux wheels are): builds the addon against that torch's libtorch, runs the precision and
# device tests (test/precision: the CUDA ones run only where a GPU is usable), times
# `bench throughput` against PyTorch on the same GPU (resnet20 and resnet18-cifar, fp32 and bf16),
# and prints one summary. Logs and JSON in $GPU_CHECK_OUT (default bench-results/gpu-check).
# Aimed at under 8 minutes: the build takes most of it. Never run yet (no GPU where it was written).
#   bench/gpu-check.sh [PYTHON]      PYTHON default: $ADAFILTER_PYTHON or python3
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${1:-${ADAFILTER_PYTHON:-python3}}
OUT=${GPU_CHECK_OUT:-bench-results/gpu-check}
BATCH=${GPU_CHECK_BATCH:-128}
mkdir -p "$OUT"
log() { printf '[gpu-check] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

torch_dir=$("$PY" -c 'import os, torch; print(os.path.dirname(torch.__file__))') || die "$PY has no torch"
"$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' || die "$PY's torch sees no CUDA device"
[ -f "$torch_dir/lib/libtorch_cuda.so" ] || die "$torch_dir/lib has no libtorch_cuda.so: not a CUDA build of torch"

log "building the addon against $torch_dir (log: $OUT/build.log)"
LIBTORCH="$torch_dir" node native/build.js > "$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log" >&2; die "addon build failed"; }
node -e "const a = require('./native/build/Release/adafilter.node'); if (!a.cudaBuilt() || a.cudaDeviceCount() < 1) process.exit(1)" \
  || die "the rebuilt addon sees no CUDA device"
log "compiling TypeScript"
npx --no-install tsc -p . > "$OUT/tsc.log" 2>&1 || { tail -20 "$OUT/tsc.log" >&2; die "tsc failed"; }

log "tests: test/precision (log: $OUT/tests.log)"
node scripts/run-tests.js precision/ > "$OUT/tests.log" 2>&1
tests_rc=$?

for arch in resnet20 resnet18-cifar; do
  for precision in fp32 bf16; do
    log "bench throughput $arch $precision"
    ADAFILTER_PYTHON="$PY" node bin/adafilter.js bench throughput --device cuda --arch "$arch" --precision "$precision" \
      --batch "$BATCH" --steps 10 --warmup 3 --rounds 3 --json > "$OUT/throughput-$arch-$precision.json" 2> "$OUT/throughput-$arch-$precision.log" \
      || log "bench throughput $arch $precision failed: $(tail -1 "$OUT/throughput-$arch-$precision.log")"
  done
done

node - "$OUT" "$tests_rc" <<'JS'
const fs = require('fs'), path = require('path');
const [out, rc] = process.argv.slice(2);
const log = fs.readFileSync(path.join(out, 'tests.log'), 'utf8');
const count = (k) => (new RegExp(`^# ${k} (\\d+)`, 'm').exec(log) || [])[1] ?? '?';
const lines = [`tests (test/precision): ${count('pass')} passed, ${count('fail')} failed, ${count('skipped')} skipped (exit ${rc})`];
for (const f of fs.readdirSync(out).filter((f) => /^throughput-.*\.json$/.test(f)).sort()) {
  try {
    const r = JSON.parse(fs.readFileSync(path.join(out, f), 'utf8'));
    const a = r.adafilter, p = r.pytorch;
    lines.push(`${r.arch} ${r.precision} on ${r.device}, batch ${r.batch}: train ${a.train_img_s.toFixed(0)} img/s (PyTorch ${p.train_img_s.toFixed(0)}, ratio ${r.train_ratio.toFixed(2)}), ` +
      `forward ${a.forward_img_s.toFixed(0)} img/s (PyTorch ${p.forward_img_s.toFixed(0)}, ratio ${r.forward_ratio.toFixed(2)}); torch ${p.torch}`);
  } catch (e) {
    lines.push(`${f}: no result (${e.message.split('\n')[0]})`);
  }
}
process.stdout.write(lines.join('\n') + '\n');
JS
exit "$tests_rc"

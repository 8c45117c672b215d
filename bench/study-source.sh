#!/bin/bash
# Issue 19's pretraining-source study (docs/results.md, "Does fine-tuning mask a poor source?"):
# the shipped default backbone vs a deliberately poor source (resnet20 pretrained 1 epoch on MNIST)
# vs random init, under linear-probe and finetune on two unseen targets at 20 shots, 2 seeds, the
# trainer's defaults (step budget); then per-layer linear CKA between each starting point and the
# network fine-tuned from it. Run from the repository root: bash bench/study-source.sh OUT_DIR
# (about 1.5 h on 2 cores; finished compares are reused, so it continues after a stop).
set -eu
S=${1:?usage: bash bench/study-source.sh OUT_DIR}
mkdir -p "$S"
A="node bin/adafilter.js"
QD='quickdraw:300-309'
GE='glyphs:scripts=Georgian;max=20;samples=30'
[ -f "$S/mnist-resnet20.safetensors" ] || $A pretrain --arch resnet20 --data mnist --epochs 1 --batch 64 --lr 0.05 --seed 0 --threads 2 --out "$S/mnist-resnet20.safetensors" --run "$S/pretrain-mnist"
start() { case $1 in default) echo default;; mnist) echo "$S/mnist-resnet20.safetensors";; random) echo resnet20;; esac; }
lane() {  # NAME DATA: one target, the three starting points in turn (one thread; two lanes share 2 cores)
  for src in default mnist random; do
    $A compare --data "$2" --shots 20 --methods linear-probe,finetune --seeds 2 --backbone "$(start $src)" --threads 1 --out "$S/compare-$1-$src" > "$S/log-$1-$src.txt" 2>&1
  done
}
lane qd "$QD" & lane georgian "$GE" & wait
for t in qd georgian; do
  data=$QD; [ $t = georgian ] && data=$GE
  for src in default mnist random; do
    $A analyze similarity "$(start $src)" "$S/compare-$t-$src/finetune-s0" --data "$data" --threads 1 --out "$S/sim-$t-$src.json" > "$S/sim-$t-$src.txt"
  done
done

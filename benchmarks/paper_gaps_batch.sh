#!/bin/bash
# The paper-gap runs of one device call on an nvidia-h200-x2 (two GPUs), all at once, each
# stopping before --deadline-s; run from the repository root with MNIST in .data/mnist:
#   bash benchmarks/paper_gaps_batch.sh OUT_DIR [DEADLINE_S]
# Curves (JSON), grids and logs go to OUT_DIR; checkpoints to runs/paper_gaps (a second call
# on a warm machine continues every run: the same command).
set -u
OUT=${1:?usage: paper_gaps_batch.sh OUT_DIR [DEADLINE_S]}
DL=${2:-520}
mkdir -p "$OUT/logs"
C="python benchmarks/paper_gaps.py --device cuda --precision tf32 --data-dir .data --out-dir $OUT --deadline-s $DL"
run() { gpu=$1; name=$2; shift 2
        CUDA_VISIBLE_DEVICES=$gpu $C $name "$@" > "$OUT/logs/$name.log" 2>&1 & }
# GPU 0: the GAN's two update rules with the mnist.yaml noise, and the AAE's default longer
run 0 gan-official-uniform --model gan --set variant=official --limit 50000 --epochs 250 --eval-every-epochs 50
run 0 gan-alg1-uniform     --model gan --limit 50000 --epochs 250 --eval-every-epochs 50
run 0 aae-adam             --model aae --epochs 150 --eval-every-epochs 25
# GPU 1: the noise factor, the SGD AAE with a per-pixel reconstruction scale, DCGAN, WGAN
run 1 gan-official-gaussian --model gan --set variant=official --set noise=gaussian --limit 50000 --epochs 250 --eval-every-epochs 50
run 1 aae-sgd              --model aae --set optimizer=sgd --set lr_recon=1.2755e-05 --set lr_reg=0.1 --epochs 100 --eval-every-epochs 25
run 1 dcgan                --model dcgan --epochs 50 --eval-every-epochs 5 --bn-modes eval,train
run 1 wgan-authors         --model wgan --set warmup=True --steps 100000 --eval-every 2500
CUDA_VISIBLE_DEVICES=1 $C reference --reference > "$OUT/logs/reference.log" 2>&1
wait

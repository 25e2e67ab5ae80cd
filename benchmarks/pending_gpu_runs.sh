#!/bin/bash
# The GPU measurements still owed by issues 11-17 (as of 2026-11-30), in two waves of one
# nvidia-h200-x2 call each (about 9 minutes), every job capped by `timeout` so a wave always
# returns. Run from the repository root with MNIST and Fashion-MNIST in .data/:
#
#   bash benchmarks/pending_gpu_runs.sh a $OUT      # wave a, then
#   bash benchmarks/pending_gpu_runs.sh b $OUT      # wave b on the still-warm machine
#
# Each wave writes its logs to $OUT/logs-<wave>/ and packs every file the jobs wrote under
# benchmarks/results/ into $OUT/results-<wave>.tgz (unpack it in the repository root).
# Runs that do not finish within their cap resume from runs/ with the same command while the
# machine stays warm (the experiment scripts' --resume); the estimates come from the helpers'
# H200 step-time measurements and are not yet checked as a whole.
set -u
WAVE=${1:?usage: pending_gpu_runs.sh a|b OUT}
OUT=${2:?usage: pending_gpu_runs.sh a|b OUT}
LOG="$OUT/logs-$WAVE"
mkdir -p "$LOG"
export SCRATCHGAN_DATA="$PWD/.data" MPLBACKEND=Agg NCCL_NVLS_ENABLE=0
D="--data-dir .data"
touch /tmp/wave-start
job() { gpu=$1; cap=$2; name=$3; shift 3
        ( CUDA_VISIBLE_DEVICES=$gpu timeout "$cap" "$@" > "$LOG/$name.log" 2>&1;
          echo "exit $?" >> "$LOG/$name.log" ) & }

if [ "$WAVE" = a ]; then
  # the GPU suite first (every new model's CuPy-vs-NumPy float64 checks), on GPU 1 alone
  job 1 300 gpu-tests python -m pytest -q -p no:cacheprovider -m gpu tests
  # GPU 0: issue 13 (ALI protocol, with WGAN-GP for issue 12) and issue 14
  job 0 520 ali-modes python benchmarks/encoders_experiments.py modes --device cuda --jobs 4
  job 0 520 cvae python benchmarks/vae_family_experiments.py cvae --device cuda $D --no-progress
  job 0 520 m2 python benchmarks/vae_family_experiments.py m2 --device cuda $D --no-progress
  # GPU 1 after the tests: issue 11 (the deeper 28x28 DCGAN and WGAN nets) and issue 15
  job 1 520 dcgan-depth3 python benchmarks/paper_gaps.py dcgan-depth3 --model dcgan --set depth=3 \
      --epochs 50 --eval-every-epochs 10 --device cuda --precision tf32 $D \
      --out-dir benchmarks/results/paper_gaps --deadline-s 480
  job 1 520 wgan-depth3 python benchmarks/paper_gaps.py wgan-depth3 --model wgan --set depth=3 \
      --set warmup=True --steps 100000 --eval-every 5000 --device cuda --precision tf32 $D \
      --out-dir benchmarks/results/paper_gaps --deadline-s 480
  job 1 520 fashion-classifier python benchmarks/image2image_experiments.py classifier --device cuda $D
else
  # GPU 0: issue 15 (pix2pix ablation, CycleGAN ablation) and issue 14 (M1+M2, beta-VAE)
  for obj in l1+cgan l1 cgan; do
    job 0 520 "pix2pix-$obj" python benchmarks/image2image_experiments.py pix2pix \
        --task edges2fashion --objective "$obj" --device cuda $D --no-progress
  done
  job 0 520 m1m2 python benchmarks/vae_family_experiments.py m2 --variant m1m2 --device cuda $D --no-progress
  # GPU 1: issue 16 (speed, then the MNIST-1K ablation and the 32x32 comparison), issue 13
  # (BiGAN) and issue 17 is a separate 2-GPU call (benchmarks/bench_distributed.py)
  job 1 120 pggan-speed python benchmarks/pggan_experiments.py speed --device cuda --seconds 8
  job 1 520 pggan-ablation python benchmarks/pggan_experiments.py ablation --device cuda \
      --rows baseline ournorm mbstd progression --seeds 0 --images 1500000 --time-limit 440 --resume
  job 1 520 bigan python benchmarks/encoders_experiments.py bigan-mnist --device cuda $D \
      --epochs-this-call 150 --time-limit 440
  for abl in none no-cycle no-identity; do
    job 1 520 "cyclegan-$abl" python benchmarks/image2image_experiments.py cyclegan \
        --ablation "$abl" --device cuda $D --no-progress
  done
fi
wait
find benchmarks/results -newer /tmp/wave-start -type f > "$LOG/written.txt"
tar czf "$OUT/results-$WAVE.tgz" -T "$LOG/written.txt"
tail -n 3 "$LOG"/*.log

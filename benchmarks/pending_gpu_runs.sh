#!/bin/bash
# The GPU measurements still owed by issues 11-16 after 2026-11-30 (what is already measured is
# in benchmarks/results/*/README.md), in waves of one nvidia-h200-x2 call each (under 10
# minutes), every job capped by `timeout` so a wave always returns. From the repository root,
# with MNIST and Fashion-MNIST in .data/ (carry: [".data"]):
#
#   bash benchmarks/pending_gpu_runs.sh a $OUT      # then b, c on the still-warm machine
#
# Each wave writes its logs to $OUT/logs-<wave>/ and packs the files its jobs wrote under
# benchmarks/results/ (no file over 4 MB; no runs/ folders) into $OUT/results-<wave>.tgz.NN
# pieces of at most 15 MB: `cat results-a.tgz.* | tar xz` in the repository root. Checkpoints
# stay in runs/ on the machine: a job cut by its cap continues with the same command (the
# scripts' --resume) only while the machine stays warm, so run the waves back to back.
# Before the waves: the branch conv-split (scratchgan/cuda/conv.py split into rooms, pure code
# motion, checked only on the CPU) merges into main after one call that runs
#   python -m pytest -q -p no:cacheprovider -m gpu tests
#   python benchmarks/bench_kernels.py --overhead --out $OUT
# on its tree; the kernel totals must match benchmarks/results/kernels-NVIDIA-H200-*.json.
set -u
WAVE=${1:?usage: pending_gpu_runs.sh a|b|c OUT}
OUT=${2:?usage: pending_gpu_runs.sh a|b|c OUT}
LOG="$OUT/logs-$WAVE"
mkdir -p "$LOG"
python -m pip install -q --no-deps --no-build-isolation -e . > /dev/null 2>&1
export SCRATCHGAN_DATA="$PWD/.data" MPLBACKEND=Agg NCCL_NVLS_ENABLE=0 PYTHONUNBUFFERED=1
D="--data-dir .data"
R=benchmarks/results
touch "/tmp/wave-$WAVE-start"
job() { gpu=$1; cap=$2; name=$3; shift 3
        ( CUDA_VISIBLE_DEVICES=$gpu timeout "$cap" "$@" > "$LOG/$name.log" 2>&1;
          echo "exit $?" >> "$LOG/$name.log" ) & }

case "$WAVE" in
a)  # GPU 0: issue 13/12, the modes protocol's 4 remaining GAN runs and 10 WGAN-GP runs (the
    # finished runs are read from $R/encoders/modes-runs.w*.jsonl); issue 14, CVAE 3 quadrants
    job 0 540 ali-modes python benchmarks/encoders_experiments.py modes --device cuda --jobs 4 --resume
    job 0 540 cvae python benchmarks/vae_family_experiments.py cvae --device cuda $D --no-progress --resume
    # issue 13: does D still win by epoch 10 when D and G/E update alternately? (diagnostic)
    job 0 300 bigan-alt python benchmarks/encoders_experiments.py bigan-mnist --device cuda $D \
        --updates alternating --epochs 20 --epochs-this-call 10 --eval-every 5 \
        --out-dir $R/encoders/bigan-alternating-e10 --ckpt-dir runs/encoders-alt
    # GPU 1: issue 11, WGAN (3-stage nets) on the authors' schedule past 75,000 iterations;
    # issue 14, M2 label draws 1 and 2 (their own result files)
    job 1 540 wgan-depth3 python benchmarks/paper_gaps.py wgan-depth3-long --model wgan \
        --set warmup=True --steps 100000 --eval-every 5000 --device cuda --precision tf32 $D \
        --out-dir $R/paper_gaps --deadline-s 500
    job 1 540 m2-s1 python benchmarks/vae_family_experiments.py m2 --seeds 1 --device cuda $D \
        --no-progress --out-dir $R/vae_family/m2-seed1
    job 1 540 m2-s2 python benchmarks/vae_family_experiments.py m2 --seeds 2 --device cuda $D \
        --no-progress --out-dir $R/vae_family/m2-seed2 ;;
b)  # GPU 0: issue 15, pix2pix quadrant completion (1, 2, 3 quadrants shown) beside a CVAE run
    for q in 1 2 3; do
      job 0 540 "quadrants-$q" bash -c "python -m scratchgan.cli train cvae --dataset mnist \
          --set n_revealed=$q --epochs 20 --device cuda $D --out runs/cvae-q$q --overwrite && \
          python benchmarks/image2image_experiments.py quadrants --shown $q --device cuda $D \
          --cvae runs/cvae-q$q"
    done
    # issue 16, pggan (paper nets) against DCGAN on MNIST at 32x32, as far as the cap allows
    job 0 540 pggan-mnist32 python benchmarks/pggan_experiments.py mnist --device cuda \
        --dataset mnist32 --time-limit 440 --resume
    # GPU 1: issue 15, the pix2pix ablation scored again with the 91.41% Fashion classifier;
    # issue 13, BiGAN from the start (the first run's checkpoint was lost), 150 epochs
    for obj in l1+cgan l1 cgan; do
      job 1 300 "pix2pix-$obj" python benchmarks/image2image_experiments.py pix2pix \
          --task edges2fashion --objective "$obj" --device cuda $D --no-progress
    done
    job 1 540 bigan python benchmarks/encoders_experiments.py bigan-mnist --device cuda $D \
        --epochs-this-call 150 --time-limit 480 ;;
c)  # GPU 0 and 1: BiGAN continued; issue 16, the MNIST-1K ablation continued to 3M images;
    # issue 12, the toy figure at the official width (512) and 20k of the official 100k iterations
    job 0 540 wgan-gp-toy python benchmarks/wgan_gp_experiments.py toy --device cuda \
        --iterations 20000 --width 512 --out-dir $R/wgan-gp/gpu
    # issue 14, beta-VAE with Adagrad's sums started at 0.1 (no float32 overflow), twice the steps
    job 1 540 betavae python benchmarks/betavae_experiments.py metric --device cuda \
        --models betavae --seeds 0,1,2 --adagrad-initial 0.1 --steps 120000 \
        --out-dir $R/betavae/adagrad0.1-120k
    job 1 540 bigan python benchmarks/encoders_experiments.py bigan-mnist --device cuda $D \
        --epochs-this-call 150 --time-limit 480 --resume
    job 0 540 pggan-ablation python benchmarks/pggan_experiments.py ablation --device cuda \
        --rows baseline ournorm mbstd progression --seeds 0 --images 3000000 --time-limit 480 --resume ;;
*)  echo "wave must be a, b or c" >&2; exit 2 ;;
esac
wait
find $R -newer "/tmp/wave-$WAVE-start" -type f -size -4M -not -path "*/runs/*" > "$LOG/written.txt"
tar czf - -T "$LOG/written.txt" | split -b 15M -d - "$OUT/results-$WAVE.tgz."
tail -n 3 "$LOG"/*.log

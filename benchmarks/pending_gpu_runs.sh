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
# CAP (seconds, default 540) caps each job; TL = CAP - 60 is the scripts' own time limit.
CAP=${CAP:-540}; TL=$((CAP - 60))
job() { gpu=$1; cap=$2; name=$3; shift 3
        ( CUDA_VISIBLE_DEVICES=$gpu timeout "$cap" "$@" > "$LOG/$name.log" 2>&1;
          echo "exit $?" >> "$LOG/$name.log" ) & }

wave_a() {  # issues 13/12: the modes protocol's remaining runs (4 GAN, 10 WGAN-GP, 10 WGAN; the
    # finished ones are read from $R/encoders/modes-runs*.jsonl), 8 workers over both GPUs
    job 0 $CAP ali-modes python benchmarks/encoders_experiments.py modes --device cuda --jobs 8 \
        --worker-devices 0,1 --resume
    # issue 14, CVAE 3 quadrants
    job 0 $CAP cvae python benchmarks/vae_family_experiments.py cvae --device cuda $D --no-progress --resume
    # issue 13: does D still win by epoch 10 when D and G/E update alternately? (diagnostic)
    job 0 300 bigan-alt python benchmarks/encoders_experiments.py bigan-mnist --device cuda $D \
        --updates alternating --epochs 20 --epochs-this-call 10 --eval-every 5 \
        --out-dir $R/encoders/bigan-alternating-e10 --ckpt-dir runs/encoders-alt
    # GPU 1: issue 14, M2 label draws 1 and 2 (their own result files)
    job 1 $CAP m2-s1 python benchmarks/vae_family_experiments.py m2 --seeds 1 --device cuda $D \
        --no-progress --out-dir $R/vae_family/m2-seed1
    job 1 $CAP m2-s2 python benchmarks/vae_family_experiments.py m2 --seeds 2 --device cuda $D \
        --no-progress --out-dir $R/vae_family/m2-seed2; }
wave_b() {  # GPU 0: issue 15, pix2pix quadrant completion (1, 2, 3 quadrants shown) beside a CVAE run
    for q in 1 2 3; do
      job 0 $CAP "quadrants-$q" bash -c "python -m scratchgan.cli train cvae --dataset mnist \
          --set n_revealed=$q --epochs 20 --device cuda $D --out runs/cvae-q$q --overwrite && \
          python benchmarks/image2image_experiments.py quadrants --shown $q --device cuda $D \
          --cvae runs/cvae-q$q"
    done
    # issue 16, pggan (paper nets) against DCGAN at 32x32 for the same images shown: a schedule
    # shortened to 240k images (20k stable / 40k fading per resolution; official 15M)
    for ds in mnist32:0 fashion-mnist32:1; do
      job ${ds#*:} $CAP "pggan-${ds%:*}" python benchmarks/pggan_experiments.py mnist --device cuda \
          --dataset ${ds%:*} --images 240000 --stable-images 20000 --fade-images 40000 \
          --time-limit $TL --resume $D
    done
    # GPU 1: issue 15, the pix2pix ablation scored again with the 91.41% Fashion classifier;
    # issue 13, BiGAN from the start (the first run's checkpoint was lost), 150 epochs
    for obj in l1+cgan l1 cgan; do
      job 1 $CAP "pix2pix-$obj" python benchmarks/image2image_experiments.py pix2pix \
          --task edges2fashion --objective "$obj" --device cuda $D --no-progress
    done
    job 1 $CAP bigan python benchmarks/encoders_experiments.py bigan-mnist --device cuda $D \
        --epochs-this-call 150 --time-limit $TL --resume; }
wave_c() {  # issue 12, the toy figure at the official width (512) and 20k of the official 100k iterations
    job 1 $CAP wgan-gp-toy python benchmarks/wgan_gp_experiments.py toy --device cuda \
        --iterations 20000 --width 512 --out-dir $R/wgan-gp/gpu
    # issue 14, beta-VAE with Adagrad's sums started at 0.1 (no float32 overflow), 200k steps,
    # one job per seed (each its own folder)
    for s in 0 1 2; do
      job $((s % 2)) $CAP "betavae-s$s" python benchmarks/betavae_experiments.py metric --device cuda \
          --models betavae --seeds $s --adagrad-initial 0.1 --steps 200000 \
          --out-dir $R/betavae/adagrad0.1-200k-s$s
    done
    # issue 16, the MNIST-1K ablation, one job per row (each writes its own JSON), 1.5M images
    for row in baseline:0 ournorm:0 mbstd:1 progression:1; do
      job ${row#*:} $CAP "pggan-ablation-${row%:*}" python benchmarks/pggan_experiments.py ablation \
          --device cuda --rows ${row%:*} --seeds 0 --images 1500000 --time-limit $TL --resume $D
    done; }
case "$WAVE" in
  a) wave_a ;;  b) wave_b ;;  c) wave_c ;;
  bc) wave_b; wave_c ;;   # b and c side by side: run with CAP=840 on one warm machine
  *) echo "wave must be a, b, c or bc" >&2; exit 2 ;;
esac
wait
find $R -newer "/tmp/wave-$WAVE-start" -type f -size -4M -not -path "*/runs/*" > "$LOG/written.txt"
tar czf - -T "$LOG/written.txt" | split -b 15M -d - "$OUT/results-$WAVE.tgz."
tail -n 3 "$LOG"/*.log

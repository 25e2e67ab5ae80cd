#!/bin/bash
# The GPU measurements still owed by issues 14 and 16 (what is measured is in
# benchmarks/results/*/README.md). Waves a, b and c ran on 2026-11-30 (the third and fourth
# sessions); their jobs are in git history (this file at commit 8ed0fbf). Wave d is what is
# still owed, in waves of one
# nvidia-h200-x2 call each (a wave fits a 10-minute call), every job capped by `timeout`. From
# the repository root, with MNIST and Fashion-MNIST in .data/ (carry: [".data"]):
#
#   bash benchmarks/pending_gpu_runs.sh d $OUT
#
# or, to run them back to back in the background (setsid) and poll with short calls, from a
# copy outside the checkout: `cp -a . /tmp/wk && cd /tmp/wk && CAP=840 bash ... d /tmp/bg`
# (a later call re-sends the working tree and removes files it does not know).
#
# Each wave writes its logs to $OUT/logs-<wave>/ and packs the files its jobs wrote under
# benchmarks/results/ (no file over 4 MB) into $OUT/results-<wave>.tgz.NN pieces of at most
# 15 MB (`cat results-d.tgz.* | tar xz` in the repository root), and the MNIST-1K ablation
# checkpoints (tiny nets) into $OUT/ckpt-<wave>.tgz: unpacked in the repository root they are
# in runs/pggan-experiments/full/, and a later session carries them (carry: [".data", "runs"])
# to continue the ablation with --resume.
set -u
WAVE=${1:?usage: pending_gpu_runs.sh d OUT}
OUT=${2:?usage: pending_gpu_runs.sh d OUT}
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


wave_d() {  # after the fourth session of 2026-11-30. Every job resumes: while the machine stays
    # warm, `bash benchmarks/pending_gpu_runs.sh d OUT` again continues each run where its cap
    # stopped it (run with CAP=840 from a copy outside the checkout, as above).
    # issue 16: the MNIST-1K ablation at the official schedule (10M images for the rows
    # without growth, 15M for the growing row), seed 0; about 20-30 min a row on a shared GPU:
    # several waves, each resuming from the checkpoints (carry: [".data", "runs"] between
    # sessions: ckpt-d.tgz unpacks into runs/pggan-experiments/full/)
    for row in baseline:0 ournorm:0 mbstd:1 progression:1; do
      job ${row#*:} $CAP "pggan-ablation-${row%:*}-full-s0" python benchmarks/pggan_experiments.py \
          ablation --device cuda --rows ${row%:*} --seeds 0 --images 15000000 --time-limit $TL \
          --resume $D
    done; }
case "$WAVE" in
  d) wave_d ;;
  *) echo "wave must be d (waves a-c are in git history)" >&2; exit 2 ;;
esac
wait
find $R -newer "/tmp/wave-$WAVE-start" -type f -size -4M -not -path "*/runs/*" > "$LOG/written.txt"
tar czf - -T "$LOG/written.txt" | split -b 15M -d - "$OUT/results-$WAVE.tgz."
# the MNIST-1K ablation checkpoints (tiny nets; the 32x32 paper nets' are too large to return)
ls runs/pggan-experiments/full/ablation-*.npz > "$LOG/ckpts.txt" 2>/dev/null &&
  tar czf "$OUT/ckpt-$WAVE.tgz" -T "$LOG/ckpts.txt"
tail -n 3 "$LOG"/*.log

#!/usr/bin/env bash
# SC-FEGAN (Jo and Park, ICCV 2019) on one CUDA GPU, at the shipped size (256, width 0.25), in
# at most 8 minutes: 40 warm-up epochs of L1 + TV, then the paper's whole loss (perceptual and
# style on VGG-16 pool1-3 at full size, SN-PatchGAN adversarial) until the time is up.
#
# Here, once (from the prepared cache; about 25 MiB + 3.4 MiB, git-ignored):
#   .venv/bin/python -m meiyan.train.sc_fegan_gpu pack ../shared/data/celeba-hq-1k runs/data --hed-size 192
# On the device (run's carry: ["runs/data/sc_fegan.npz", "runs/data/vgg16_hed_pool3.h5"]; not the
# whole of runs/data, which holds PSGAN's pack too and would pass the 64 MiB a run carries):
#   bash train/gpu/sc_fegan.sh
# Writes $OUT/sc_fegan_gpu.pt (float16 networks, about 12 MiB; `meiyan export sc-fegan` reads it),
# $OUT/log.jsonl and $OUT/samples.jpg (the last validation grid).
# CPU check with a tiny step count: SC_FEGAN_SECONDS=60 SC_FEGAN_ARGS="--device cpu --limit 8
#   --batch 2 --workers 0 --threads 1 --epochs 2 --warmup-epochs 1" bash train/gpu/sc_fegan.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=train/gpu/common.sh
source train/gpu/common.sh
OUT=${OUT:-runs/gpu-out}
PYTHON=${PYTHON:-python3}
SECONDS_LEFT=${SC_FEGAN_SECONDS:-420}
RUN=${SC_FEGAN_RUN:-/tmp/sc-fegan-gpu}
export PYTHONPATH=src PYTHONUNBUFFERED=1
mkdir -p "$OUT"
rm -rf "$RUN"
# shellcheck disable=SC2086  # SC_FEGAN_ARGS is a list of options
timed_train "$SECONDS_LEFT" "$OUT/train.log" "$PYTHON" -m meiyan.train.sc_fegan_cli \
  --data runs/data/sc_fegan.npz --vgg runs/data/vgg16_hed_pool3.h5 --out "$RUN" \
  --size 256 --width 0.25 --lr 2e-4 --device cuda --no-amp --batch 16 --workers 12 \
  --epochs 1000 --warmup-epochs 40 --perceptual-size 256 ${SC_FEGAN_ARGS:-}
"$PYTHON" -m meiyan.train.sc_fegan_gpu compact "$RUN/best.pt" "$OUT/sc_fegan_gpu.pt"
cp "$RUN/log.jsonl" "$OUT/log.jsonl"
last=$(ls "$RUN"/samples/*.jpg | tail -1)
cp "$last" "$OUT/samples.jpg"

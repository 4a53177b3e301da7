#!/usr/bin/env bash
# The skin U-Net (issue 12) on one CUDA GPU in at most 8 minutes: the seed's full width
# (34,600,353 parameters) and the shipped width 0.25 on the same pack, each for the same
# epochs from scratch at the shipped input size (192), then both networks' IoU per dataset on
# the held-out splits (FASSEG test, LFW validation, CelebA-HQ validation): whether width buys
# accuracy.
#
# Here, once (about 45 MiB, git-ignored):
#   .venv/bin/meiyan train skin-pack --data ../shared/data -o runs/data/skin_pack.npz --quality 85
# On the device (run's carry: ["runs/data/skin_pack.npz"]; not the whole of runs/data, which
# holds other packs and would pass the 64 MiB a run carries):
#   bash train/gpu/skin_unet.sh
# Writes $OUT/skin_unet_gpu.pt (the shipped width, float16, about 4 MiB; `meiyan export
# skin-unet` reads it), $OUT/report.md and each run's log.
# No CPU check of the whole script: on 2 cores the full width takes about 60 s per batch of 32
# (measured 2026-12-07), so no epoch ends in minutes and the report finds no checkpoint.
# tests/test_skin_data.py runs the pack, a training step and the report's held-out IoU.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=train/gpu/common.sh
source train/gpu/common.sh
OUT=${OUT:-runs/gpu-out}
PYTHON=${PYTHON:-python3}
EPOCHS=${SKIN_EPOCHS:-30}
SECONDS_EACH=${SKIN_SECONDS:-210}
SIZE=${SKIN_SIZE:-192}
PACK=runs/data/skin_pack.npz
export PYTHONPATH=src PYTHONUNBUFFERED=1
mkdir -p "$OUT"
for width in 1.0 0.25; do
  run=/tmp/skin-unet-w$width
  rm -rf "$run"
  # shellcheck disable=SC2086  # SKIN_ARGS is a list of options
  timed_train "$SECONDS_EACH" "$OUT/train_w$width.log" \
    "$PYTHON" -c "from meiyan.cli.main import main; main()" \
    train skin-unet --data "$PACK" --out "$run" --epochs "$EPOCHS" --batch 32 --workers 12 \
    --val-split 0.1 --width "$width" --size "$SIZE" --loss bce+dice --schedule cosine --lr 1e-3 \
    --device cuda --seed 0 ${SKIN_ARGS:-}
  cp "$run/log.jsonl" "$OUT/log_w$width.jsonl"
done
"$PYTHON" -m meiyan.train.skin_gpu report "$PACK" /tmp/skin-unet-w1.0/best.pt \
  /tmp/skin-unet-w0.25/best.pt | tee "$OUT/report.md"
"$PYTHON" -m meiyan.train.skin_gpu compact /tmp/skin-unet-w0.25/best.pt "$OUT/skin_unet_gpu.pt"

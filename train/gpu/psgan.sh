#!/usr/bin/env bash
# PSGAN (Jiang et al., CVPR 2020) on synthetic triples (virtual looks on CelebA-HQ, LFW and FASSEG
# faces; issue 16) on one CUDA GPU in at most 8 minutes: one warm-up epoch of the cheap losses (L1
# to the target, cycle), then the whole loss (perceptual on VGG-16's HED trunk, identity, makeup,
# both domain PatchGANs and the brow, eye and lip critics) until the time is up.
#
# Here, once (git-ignored; the pack about 36 MiB, the loss network 3.4 MiB):
#   .venv/bin/meiyan train psgan-pack --data ../shared/data -o runs/data/psgan_pack.npz
#   runs/data/vgg16_hed_pool3.h5 as `python -m meiyan.train.sc_fegan_gpu pack` writes it
# On the device (run's carry: ["runs/data/psgan_pack.npz", "runs/data/vgg16_hed_pool3.h5"]):
#   bash train/gpu/psgan.sh
# Writes the float16 checkpoint (all networks, no optimiser state; about 43 MiB) in parts of at
# most 15 MiB, $OUT/psgan_gpu.pt.00, .01, ... (a file comes back at 16 MiB at most; join them
# with `cat psgan_gpu.pt.* > psgan_gpu.pt`, which `meiyan export psgan` reads) and $OUT/log.jsonl.
# CPU check with a tiny step count: PSGAN_SECONDS=300 PSGAN_ARGS="--device cpu --limit 2
#   --val-limit 2 --batch 1 --workers 0 --threads 1 --epochs 2" bash train/gpu/psgan.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=train/gpu/common.sh
source train/gpu/common.sh
OUT=${OUT:-runs/gpu-out}
PYTHON=${PYTHON:-python3}
SECONDS_LEFT=${PSGAN_SECONDS:-420}
RUN=${PSGAN_RUN:-/tmp/psgan-gpu}
VGG=runs/data/vgg16_hed_pool3.h5
export PYTHONPATH=src PYTHONUNBUFFERED=1
[ -f "$VGG" ] || { echo "no $VGG: make it here first (see this script's header)" >&2; exit 1; }
mkdir -p "$OUT"
rm -rf "$RUN"
# shellcheck disable=SC2086  # PSGAN_ARGS is a list of options
timed_train "$SECONDS_LEFT" "$OUT/train.log" "$PYTHON" -c "from meiyan.cli.main import main; main()" \
  train psgan --data runs/data/psgan_pack.npz --vgg "$VGG" --out "$RUN" --lr 2e-4 \
  --warmup-epochs 1 --device cuda --batch 16 --workers 14 --epochs 1000 ${PSGAN_ARGS:-}
"$PYTHON" -c "import sys; from pathlib import Path; from meiyan.train.trainer import \
compact_checkpoint as c; c(sys.argv[1], Path(sys.argv[2]), 'psgan')" "$RUN/best.pt" "$RUN/psgan_gpu.pt"
split -b 15M -d "$RUN/psgan_gpu.pt" "$OUT/psgan_gpu.pt."
cp "$RUN/log.jsonl" "$OUT/log.jsonl"
ls -l "$OUT"

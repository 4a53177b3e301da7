"""The SC-FEGAN GPU run's files (``train/gpu/sc_fegan.sh``): its data in, its checkpoint out.

``pack``: the prepared training and validation data of a face folder (:mod:`meiyan.train.
sc_fegan_data`, from the cache) re-encoded as one compact ``.npz`` (photos JPEG 90, colour maps
JPEG 85), and VGG-16 conv1_1..conv3_3 of the HED weights (the loss network) as a small float16
``.h5``. ``compact``: the generator and discriminator of a trainer checkpoint in float16 and
nothing else (no optimiser state; :func:`meiyan.train.trainer.compact_checkpoint`), still a
checkpoint that ``meiyan export sc-fegan`` reads.

    python -m meiyan.train.sc_fegan_gpu pack DATA_DIR runs/data [--size 256] [--hed-size N]
    python -m meiyan.train.sc_fegan_gpu compact RUN/best.pt OUT/sc_fegan_gpu.pt
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image

from meiyan.train.sc_fegan_data import Prepared, _decode, prepare
from meiyan.train.trainer import compact_checkpoint
from meiyan.train.vgg import _h5_chain, hed_weights_path

DATA_FILE = "sc_fegan.npz"
VGG_FILE = "vgg16_hed_pool3.h5"
QUALITY = {"photo": 90, "colour": 85}


def _jpeg(data: bytes, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_decode(data)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def pack(root: Path, out: Path, size: int = 256, hed_size: int | None = None,
         val_limit: int = 48) -> tuple[Path, Path]:
    """Write ``out/sc_fegan.npz`` (train then validation, the latter as holdout) and
    ``out/vgg16_hed_pool3.h5``; returns their paths."""
    import h5py

    options = {"use_hed": True, "hed_size": hed_size, "progress": True}
    train = prepare(root / "train", size, **options)
    val = prepare(root / "validation", size, limit=val_limit, **options)
    data = Prepared.joined(train, val)
    for key, quality in QUALITY.items():
        data.blobs[key] = [_jpeg(b, quality) for b in data.blobs[key]]
    out.mkdir(parents=True, exist_ok=True)
    data.save(out / DATA_FILE)
    with h5py.File(out / VGG_FILE, "w") as f:
        for i, (kernel, bias) in enumerate(_h5_chain(hed_weights_path())):
            group = f.create_group(f"conv{i + 1}")  # natural order: conv1 .. conv7
            group["kernel"] = kernel.transpose(2, 3, 1, 0).astype(np.float16)  # 3x3xINxOUT
            group["kernel_bias"] = bias.astype(np.float16)
    return out / DATA_FILE, out / VGG_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("data", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--hed-size", type=int, default=None)
    c = sub.add_parser("compact")
    c.add_argument("checkpoint", type=Path)
    c.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.command == "pack":
        for path in pack(args.data, args.out, args.size, args.hed_size):
            print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    else:
        path = compact_checkpoint(args.checkpoint, args.out, "sc-fegan")
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()

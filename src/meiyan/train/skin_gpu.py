"""Per-dataset figures of skin U-Net checkpoints on a skin pack, and the GPU run's checkpoint.

``report``: each checkpoint's IoU on the held-out splits of a pack (FASSEG ``test``, LFW
``validation``, CelebA-HQ ``validation``; the network alone on the face windows, features
included as the labels have them, ignored pixels left out), printed as one Markdown table.
``compact``: a float16 checkpoint without optimiser state (what ``train/gpu/skin_unet.sh``
brings back; ``meiyan export skin-unet`` reads it).

    python -m meiyan.train.skin_gpu report PACK CHECKPOINT [CHECKPOINT ...]
    python -m meiyan.train.skin_gpu compact RUN/best.pt OUT/skin_unet_gpu.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from meiyan.train.skin_data import Pack
from meiyan.train.tasks.skin_unet import PackedSkinDataset, SkinUNetTask, evaluate
from meiyan.train.trainer import compact_checkpoint, load_task

HELD_OUT = {"fasseg": "test", "lfw": "validation", "celeba": "validation"}
"""The split of each dataset that nothing is trained or chosen on."""


def held_out_iou(task: SkinUNetTask, pack: Pack, device: str = "cpu") -> dict[str, float]:
    """IoU per dataset of a loaded task's network on the pack's held-out splits."""
    net = task.nets["unet"].to(device)
    out: dict[str, float] = {}
    for name, split in HELD_OUT.items():
        idx = pack.indices(name, split)
        if len(idx):
            data = PackedSkinDataset(pack, idx, [name], task.cfg.size, False)
            loader = DataLoader(data, batch_size=16)
            out[name] = evaluate(net, loader, torch.device(device), [name])[f"iou_{name}"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report")
    r.add_argument("pack", type=Path)
    r.add_argument("checkpoints", type=Path, nargs="+")
    r.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    c = sub.add_parser("compact")
    c.add_argument("checkpoint", type=Path)
    c.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.command == "compact":
        path = compact_checkpoint(args.checkpoint, args.out, SkinUNetTask.name)
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
        return
    pack = Pack(args.pack)
    print("| checkpoint | width | parameters | " + " | ".join(
        f"{n} {s} IoU" for n, s in HELD_OUT.items()) + " |")
    print("|---|---:|---:|" + "---:|" * len(HELD_OUT))
    for path in args.checkpoints:
        task = load_task(path, SkinUNetTask.name)
        params = sum(p.numel() for p in task.nets["unet"].parameters())
        scores = held_out_iou(task, pack, args.device)
        cells = [f"{scores[n]:.3f}" if n in scores else "n/a" for n in HELD_OUT]
        print(f"| {path} | {task.cfg.width} | {params:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

r"""Train ABPN at full resolution on one CUDA GPU for a fixed wall time (default 7 minutes).

    python -m meiyan.train.tasks.abpn_gpu --faces runs/data/abpn_faces_compact.npz \
        --out "$OUT" [--init best.pt|abpn.onnx] [--width 32] [--stage all|lrl] [--minutes 7]
        [--size 512] [--batch 16] [--workers 12]

The faces file a device run carries (``["runs/data/abpn_faces_compact.npz"]``, 42 MiB; the full
one, 85 MB, is over the 64 MiB a run carries) is made here, once, from the CPU runs' file::

    .venv/bin/python -c "from pathlib import Path; from meiyan.train.tasks.abpn import \
        compact_faces_file as c; c(Path('runs/abpn_faces.npz'), \
        Path('runs/data/abpn_faces_compact.npz'))"

The task and losses of :mod:`meiyan.train.tasks.abpn` (T. Lei et al., ABPN, CVPR 2022) on
whole 512-pixel faces instead of 256-pixel crops, mixed precision, the learning rate on a cosine
of the elapsed time; ``--init`` starts from a checkpoint (e.g. the CPU run's ``best.pt``) or an
exported model, ``--stage lrl`` trains the local retouching layer alone (see the task). The
data is the one prepared faces file (:func:`meiyan.train.tasks.abpn.build_faces_file`). Writes
``abpn_gpu.pt`` (a trainer checkpoint: ``meiyan export abpn OUT/abpn_gpu.pt -o abpn.onnx``) and
``abpn_gpu.json`` (losses and the validation gain) under ``--out``. Runs on the CPU too (for a
test with ``--steps``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from meiyan.train.tasks.abpn import STAGES, AbpnConfig, AbpnTask
from meiyan.train.trainer import (
    CHECKPOINT_FORMAT,
    save_checkpoint,
    seed_everything,
    seed_worker,
)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--init", default=None, help="an abpn checkpoint or exported ONNX model")
    ap.add_argument("--width", type=int, default=AbpnConfig.width, help="LRL base width")
    ap.add_argument("--stage", choices=STAGES, default="all")
    ap.add_argument("--minutes", type=float, default=7.0)
    ap.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, default=12)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--spot-weight", type=float, default=0.0, help="extra L1 weight on small defects"
    )
    args = ap.parse_args(argv)
    began = time.perf_counter()
    limit = args.minutes * 60.0
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    seed_everything(args.seed)
    task = AbpnTask(
        AbpnConfig(
            faces=args.faces,
            size=args.size,
            val_size=min(max(args.size, 352), 512),
            lr=args.lr,
            spot_weight=args.spot_weight,
            width=args.width,
            init=args.init,
            stage=args.stage,
        )
    )
    task.device, task.seed, task.amp = device, args.seed, cuda
    task.scaler = torch.amp.GradScaler(device.type, enabled=cuda)
    net = task.build_networks()["abpn"]
    task.nets = task.train_nets = {"abpn": net.to(device)}
    adam = torch.optim.Adam((net.lrl if args.stage == "lrl" else net).parameters(), lr=args.lr)
    task.optimizers = {"adam": adam}
    train_set, val_set = task.datasets()
    common = {
        "num_workers": args.workers,
        "worker_init_fn": seed_worker,
        "pin_memory": cuda,
        "persistent_workers": args.workers > 0,
    }
    loader = DataLoader(
        train_set,
        args.batch,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(args.seed),
        **common,
    )
    val_loader = DataLoader(val_set, 4, **common) if val_set is not None else None
    steps, epoch, sums = 0, 0, {}
    reserve = 45.0  # seconds kept for validation and writing
    done = False
    while not done:
        train_set.set_epoch(epoch)
        net.train()
        for batch in loader:
            frac = min(1.0, (time.perf_counter() - began) / max(limit - reserve, 1.0))
            for group in adam.param_groups:
                group["lr"] = args.lr * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * frac)))
            values = task.train_step(batch)
            task.scaler.update()
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            steps += 1
            if steps % 50 == 0:
                print(
                    f"step {steps} epoch {epoch} {time.perf_counter() - began:.0f} s "
                    f"loss {sums['loss'] / steps:.4f}",
                    flush=True,
                )
            if frac >= 1.0 or (args.steps is not None and steps >= args.steps):
                done = True
                break
        epoch += 1
    net.eval()
    metrics = {}
    if val_loader is not None:
        with torch.no_grad():
            metrics = task.validate(val_loader)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "steps": steps,
        "epochs": epoch,
        "losses": {k: v / max(steps, 1) for k, v in sums.items()},
        "metrics": metrics,
        "seconds": round(time.perf_counter() - began, 1),
        "device": str(device),
        "args": vars(args),
    }
    net_cpu = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    save_checkpoint(
        out / "abpn_gpu.pt",
        {
            "format": CHECKPOINT_FORMAT,
            "task": AbpnTask.name,
            "config": asdict(task.cfg),
            "trainer": {"seed": args.seed},
            "epoch": epoch,
            "networks": {"abpn": net_cpu},
            "optimizers": {},
            "schedulers": {},
            "scaler": {},
            "rng": {},
            "best": None,
            "history": [summary],
        },
    )
    (out / "abpn_gpu.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary), flush=True)
    return summary


if __name__ == "__main__":
    main()

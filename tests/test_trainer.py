"""The general trainer: seeding, workers, checkpoints and resume, logs, devices, DDP, datasets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn import functional  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from meiyan.errors import ModelError  # noqa: E402
from meiyan.train.trainer import (  # noqa: E402
    EpochDataset,
    Task,
    Trainer,
    TrainerConfig,
    load_checkpoint,
    resolve_device,
)

TESTS = Path(__file__).resolve().parent


class ToyData(EpochDataset):
    """``n`` fixed inputs; targets a fixed linear map plus noise drawn per (epoch, index)."""

    def __init__(self, n: int, seed: int, noise: float) -> None:
        super().__init__(seed)
        self.n, self.noise = n, noise
        self.w = np.random.default_rng(1234).normal(size=(4, 2)).astype(np.float32)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = np.random.default_rng([99, index]).normal(size=4).astype(np.float32)
        y = x @ self.w + self.noise * self.rng(index).normal(size=2).astype(np.float32)
        return torch.from_numpy(x), torch.from_numpy(y)


class ToyTask(Task):
    """A generator and a critic with their own optimisers, as a GAN task has them."""

    name = "toy"
    best_mode = "min"
    best_metric = "val_mse"

    def __init__(self, n: int = 8, lr: float = 0.05) -> None:
        super().__init__()
        self.n, self.lr = n, lr

    def config(self) -> dict[str, Any]:
        return {"n": self.n, "lr": self.lr}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ToyTask:
        return cls(**config)

    def build_networks(self) -> dict[str, nn.Module]:
        return {"gen": nn.Linear(4, 2), "critic": nn.Sequential(nn.Linear(2, 3), nn.Tanh(),
                                                                nn.Linear(3, 1))}

    def build_optimizers(self, epochs: int) -> tuple[dict, dict]:
        gen = torch.optim.Adam(self.nets["gen"].parameters(), lr=self.lr)
        critic = torch.optim.SGD(self.nets["critic"].parameters(), lr=self.lr, momentum=0.9)
        return ({"gen": gen, "critic": critic},
                {"gen": torch.optim.lr_scheduler.StepLR(gen, 1, gamma=0.9)})

    def datasets(self) -> tuple[ToyData, ToyData]:
        return ToyData(self.n, self.seed, 0.1), ToyData(4, self.seed, 0.0)

    def train_step(self, batch: Any) -> dict[str, torch.Tensor]:
        x, y = self.to_device(batch)
        gen, critic = self.train_nets["gen"], self.train_nets["critic"]
        with self.autocast():
            fake = gen(x)
            # One critic forward per backward (DDP): real and fake in one batch.
            scores = critic(torch.cat([y, fake.detach()]))
            d_loss = functional.mse_loss(scores, torch.cat([torch.ones_like(scores[: len(y)]),
                                                            torch.zeros_like(scores[len(y):])]))
        self.optimize(d_loss, "critic")
        with self.autocast():
            g_loss = functional.mse_loss(fake, y) + 0.1 * critic(fake).sub(1).square().mean()
        self.optimize(g_loss, "gen")
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    def validate(self, loader: DataLoader) -> dict[str, float]:
        total, count = torch.zeros((), dtype=torch.float64), 0
        for x, y in loader:
            total += functional.mse_loss(self.nets["gen"](x), y, reduction="sum").double()
            count += len(x)
        return {"val_mse": float(total) / count}

    def export(self, path: Path) -> float:
        raise NotImplementedError


def fit(out: Path | None, epochs: int, **trainer: Any) -> tuple[ToyTask, dict[str, Any]]:
    task = ToyTask(n=trainer.pop("n", 8))
    cfg = TrainerConfig(out=None if out is None else str(out), epochs=epochs,
                        batch=trainer.pop("batch", 4), workers=trainer.pop("workers", 0),
                        device="cpu", threads=1, **trainer)
    return task, Trainer(task, cfg).fit(progress=False)


def without_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def same_tensors(a: Mapping, b: Mapping) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_seed_repeats_the_run_and_another_seed_does_not(tmp_path: Path) -> None:
    a, ra = fit(tmp_path / "a", 3, seed=5)
    b, rb = fit(tmp_path / "b", 3, seed=5)
    _, rc = fit(tmp_path / "c", 3, seed=6)
    assert without_times(ra["history"]) == without_times(rb["history"])
    for name in ("gen", "critic"):
        assert same_tensors(a.nets[name].state_dict(), b.nets[name].state_dict())
    assert without_times(rc["history"]) != without_times(ra["history"])


def test_worker_processes_give_the_same_run(tmp_path: Path) -> None:
    """Random choices depend on (seed, epoch, index): 0 or 2 workers train the same."""
    a, ra = fit(tmp_path / "a", 2, workers=0)
    b, rb = fit(tmp_path / "b", 2, workers=2)
    assert without_times(ra["history"]) == without_times(rb["history"])
    assert same_tensors(a.nets["gen"].state_dict(), b.nets["gen"].state_dict())


def test_checkpoints_logs_and_exact_resume(tmp_path: Path) -> None:
    fit(tmp_path / "a", 2)
    first = load_checkpoint(tmp_path / "a" / "last.pt", "toy")
    resumed_task, resumed = fit(tmp_path / "a", 4, resume=True)
    straight_task, straight = fit(tmp_path / "b", 4)
    assert first["epoch"] == 2 and len(first["history"]) == 2
    assert without_times(resumed["history"]) == without_times(straight["history"])
    a = load_checkpoint(tmp_path / "a" / "last.pt", "toy")
    b = load_checkpoint(tmp_path / "b" / "last.pt", "toy")
    assert a["networks"].keys() == a["optimizers"].keys() == {"gen", "critic"}
    assert a["schedulers"].keys() == {"gen"} and a["scaler"] == {}
    for name in ("gen", "critic"):
        assert same_tensors(a["networks"][name], b["networks"][name])
        assert same_tensors(resumed_task.nets[name].state_dict(),
                            straight_task.nets[name].state_dict())
    assert a["schedulers"]["gen"]["last_epoch"] == 4
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    assert a["config"] == {"n": 8, "lr": 0.05} and a["trainer"]["epochs"] == 4

    rows = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    for row in rows:
        assert row.keys() == {"epoch", "losses", "metrics", "seconds", "lr"}
        assert row["losses"].keys() == {"d_loss", "g_loss"}
        assert row["lr"].keys() == {"gen", "critic"}
    assert rows[1]["lr"]["gen"] == pytest.approx(0.05 * 0.9)
    scores = [r["metrics"]["val_mse"] for r in rows]
    best = load_checkpoint(tmp_path / "a" / "best.pt", "toy")
    assert best["best"] == {"metric": "val_mse", "value": min(scores),
                            "epoch": 1 + int(np.argmin(scores))}
    assert best["epoch"] == best["best"]["epoch"]


def test_resume_refuses_what_it_cannot_continue(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no checkpoint"):
        fit(tmp_path / "a", 2, resume=True)
    fit(tmp_path / "a", 1)
    with pytest.raises(ModelError, match="other options: n"):
        fit(tmp_path / "a", 2, resume=True, n=6)
    with pytest.raises(ModelError, match="other options: seed"):
        fit(tmp_path / "a", 2, resume=True, seed=1)
    with pytest.raises(ModelError, match="is a toy checkpoint, not skin-unet"):
        load_checkpoint(tmp_path / "a" / "last.pt", "skin-unet")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match=r"^cannot read checkpoint .*bad\.pt: [^\n]*$"):
        load_checkpoint(tmp_path / "bad.pt")


def test_checkpoints_hold_no_pickled_objects(tmp_path: Path) -> None:
    fit(tmp_path, 1)
    state = torch.load(tmp_path / "last.pt", weights_only=True)  # raises on any pickled class

    def plain(x: Any) -> bool:
        if isinstance(x, dict):
            return all(isinstance(k, str | int) and plain(v) for k, v in x.items())
        if isinstance(x, list | tuple):
            return all(plain(v) for v in x)
        return x is None or isinstance(x, str | int | float | bool | torch.Tensor)

    assert plain(state)


def test_default_run_folder_is_in_the_user_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _, summary = fit(None, 1)
    assert Path(summary["out"]) == tmp_path / "cache" / "meiyan" / "runs" / "toy"
    assert (Path(summary["out"]) / "last.pt").is_file()


def test_devices_and_mixed_precision_off_on_cpu(tmp_path: Path) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("tpu")
    if torch.cuda.is_available():
        assert resolve_device("auto").type == "cuda"
    else:
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(ModelError, match="no CUDA GPU"):
            resolve_device("cuda")
    task, _ = fit(tmp_path, 1)
    assert not task.amp and not task.scaler.is_enabled()
    assert torch.get_num_threads() >= 1 and not torch.are_deterministic_algorithms_enabled()


DDP_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
import torch
from test_trainer import fit
task, _ = fit(sys.argv[2], 2, batch=4)
rank = int(__import__("os").environ["RANK"])
torch.save({k: v.state_dict() for k, v in task.nets.items()}, f"{sys.argv[3]}/rank{rank}.pt")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_with_gloo_train_as_one_with_twice_the_batch(tmp_path: Path) -> None:
    """torchrun's environment, two CPU processes: DistributedDataParallel averages the
    gradients of two half batches, so with all 8 samples in each step the result equals one
    process with batch 8; only rank 0 writes checkpoints and the log."""
    env = {**os.environ, "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port()), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen([sys.executable, "-c", DDP_SCRIPT, str(TESTS), str(tmp_path / "ddp"),
                          str(tmp_path)], env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for r in range(2)
    ]
    for p in procs:
        out, _ = p.communicate(timeout=180)
        assert p.returncode == 0, out
    single, summary = fit(tmp_path / "single", 2, batch=8)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for name, net in single.nets.items():
        assert same_tensors(ranks[0][name], ranks[1][name])
        for key, value in net.state_dict().items():
            torch.testing.assert_close(ranks[0][name][key], value, atol=1e-6, rtol=1e-5)
    rows = (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()
    assert len(rows) == 2
    for row, expected in zip(rows, summary["history"], strict=True):
        got = json.loads(row)
        assert got["losses"] == pytest.approx(expected["losses"], rel=1e-5)
        assert got["metrics"] == pytest.approx(expected["metrics"], rel=1e-5)
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["best.pt", "last.pt",
                                                                     "log.jsonl"]


# --- data ----------------------------------------------------------------------------------


def test_photos_are_read_upright_and_lazily(tmp_path: Path) -> None:
    """A photo stored sideways with EXIF orientation 6 pairs with a mask drawn upright."""
    from PIL import Image

    from meiyan.train.datasets import check_sizes, find_pairs

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    upright = np.zeros((40, 24, 3), np.uint8)
    upright[:10] = 255  # white at the top as displayed
    stored = np.rot90(upright, 1)  # orientation 6 displays the stored pixels turned clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(stored)).save(tmp_path / "images" / "a.jpg",
                                                       exif=exif.tobytes(), quality=95)
    Image.fromarray(upright[..., 0]).save(tmp_path / "masks" / "a.png")
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / "images" / "b.png")
    (tmp_path / "masks" / "b.png").write_bytes(b"broken")

    sources = find_pairs(tmp_path)  # lists files only: the broken mask is not read yet
    assert [s.name for s in sources] == ["a", "b"]
    check_sizes(sources[:1])
    pair = sources[0].load()
    assert pair.image.shape == (40, 24, 3) and pair.image.dtype == np.uint8
    assert pair.image[:10].mean() > 200 and pair.image[20:].mean() < 50
    np.testing.assert_array_equal(pair.mask, upright[..., 0] > 0)
    with pytest.raises(Exception, match=r"b\.png"):
        sources[1].load()


def test_sizes_are_checked_before_training(tmp_path: Path) -> None:
    from PIL import Image

    from meiyan.errors import ImageError
    from meiyan.train.datasets import check_sizes, find_pairs

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((8, 6, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(tmp_path / "masks" / "a.png")
    with pytest.raises(ImageError, match=r"^a: mask size \(8, 6\) differs from image size"):
        check_sizes(find_pairs(tmp_path))


def test_label_maps_keep_palette_indices(tmp_path: Path) -> None:
    from PIL import Image

    from meiyan.train.datasets import load_pairs

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    labels = np.array([[0, 1, 2], [4, 5, 1]], np.uint8)
    Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    palette = Image.fromarray(labels, mode="P")
    palette.putpalette([v for i in range(256) for v in (i * 7 % 256, i * 3 % 256, 255 - i)])
    palette.save(tmp_path / "labels" / "a.png")
    (pair,) = load_pairs(tmp_path)  # FASSEG layout: skin = labels 1 and 4
    np.testing.assert_array_equal(pair.mask, np.isin(labels, [1, 4]))


# --- command line --------------------------------------------------------------------------


def _discs(root: Path, n: int = 6, size: int = 32) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        cy, cx = rng.integers(size // 3, 2 * size // 3, 2)
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < (size // 4) ** 2
        image[mask] = (220, 170, 140)
        Image.fromarray(image).save(root / "images" / f"d{i}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / f"d{i}.png")


@pytest.mark.slow
def test_train_and_export_skin_unet_from_the_command_line(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    from click.testing import CliRunner

    from meiyan.cli.train_cmds import export, train

    _discs(tmp_path / "data")
    args = ["skin-unet", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
            "--width", "0.125", "--size", "32", "--batch", "2", "--loss", "bce+dice",
            "--schedule", "cosine", "--threads", "1", "--seed", "2", "--device", "cpu",
            "--workers", "1", "--skin-labels", "255", "--val-split", "0.34"]
    runner = CliRunner()
    result = runner.invoke(train, [*args, "--epochs", "1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(train, [*args, "--epochs", "2", "--resume"])
    assert result.exit_code == 0, result.output
    assert "best val_iou" in result.output
    state = load_checkpoint(tmp_path / "run" / "last.pt", "skin-unet")
    assert state["epoch"] == 2 and state["config"]["skin_labels"] == [255]
    assert state["config"]["loss"] == "bce+dice" and state["trainer"]["workers"] == 1

    result = runner.invoke(train, [*args, "--epochs", "3", "--resume", "--width", "0.25"])
    assert result.exit_code == 1 and "other options: width" in result.output
    assert len(result.output.strip().splitlines()) == 1

    onnx_path = tmp_path / "m.onnx"
    result = runner.invoke(export, ["skin-unet", str(tmp_path / "run" / "best.pt"),
                                    "-o", str(onnx_path)])
    assert result.exit_code == 0, result.output
    assert onnx_path.is_file() and "max |onnx - torch|" in result.output

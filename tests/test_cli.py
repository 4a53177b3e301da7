"""The command line: smooth and beautify over files and folders, errors, overwrite, depth."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from meiyan import __version__
from meiyan.cli.main import COMMANDS, main
from meiyan.io.image import read_image
from meiyan.memory import keep_freed_memory


def write_rgb(path: Path, rgb: np.ndarray, **kw) -> Path:
    Image.fromarray(rgb).save(path, **kw)
    return path


@pytest.fixture
def photos(tmp_path: Path, sample_rgb: np.ndarray) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    small = sample_rgb[::4, ::4].copy()
    write_rgb(folder / "a.jpg", small, quality=95)
    write_rgb(folder / "b.png", small[:, ::-1].copy())
    return folder


def run(*args: str) -> object:
    return CliRunner().invoke(main, list(args))


def test_version_and_help_on_every_command() -> None:
    res = run("--version")
    assert res.exit_code == 0 and __version__ in res.output
    listing = run("--help")
    assert listing.exit_code == 0
    assert len(COMMANDS) == 11
    for name, (_, _, line) in COMMANDS.items():
        assert f"{name} " in listing.output and line in listing.output
        res = run(name, "--help")
        assert res.exit_code == 0, name
        assert res.output.startswith(f"Usage: main {name} "), name


def test_listing_the_commands_imports_none_of_them() -> None:
    code = (
        "import sys; sys.argv = ['meiyan', '--help']\n"
        "from meiyan.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('numpy', 'cv2', 'meiyan.cli.batch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("command", ["smooth", "beautify"])
def test_folder_in_named_outputs_out(command: str, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = run(command, str(photos), "-o", str(out), "--skin", "none")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.png"]
    before = read_image(photos / "b.png").pixels
    after = read_image(out / "b.png").pixels
    assert after.shape == before.shape and not np.array_equal(after, before)


def test_progress_bar_only_for_several_images(photos: Path, tmp_path: Path) -> None:
    many = run("smooth", str(photos), "-o", str(tmp_path / "o1"), "--skin", "none")
    one = run("smooth", str(photos / "a.jpg"), "-o", str(tmp_path / "o2"), "--skin", "none")
    assert "2/2" in many.stderr
    assert "1/1" not in one.stderr


def test_bad_file_is_reported_and_the_rest_processed(photos: Path, tmp_path: Path) -> None:
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    res = run("beautify", str(photos), "-o", str(out), "--skin", "none")
    assert res.exit_code == 1
    assert "broken.jpg" in res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.png"]


def test_missing_input_is_an_error(tmp_path: Path) -> None:
    res = run("smooth", str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "out"))
    assert res.exit_code == 2 and "nope.jpg" in res.stderr


def test_never_overwrites_without_flag(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("smooth", str(photos / "a.jpg"), "-o", str(out)).exit_code == 0
    stamp = (out / "a.jpg").read_bytes()
    res = run("smooth", str(photos / "a.jpg"), "-o", str(out), "--strength", "1")
    assert res.exit_code == 1 and "--overwrite" in res.stderr
    assert (out / "a.jpg").read_bytes() == stamp
    res = run("smooth", str(photos / "a.jpg"), "-o", str(out), "--strength", "1", "--overwrite")
    assert res.exit_code == 0 and (out / "a.jpg").read_bytes() != stamp


def test_sixteen_bit_png_stays_sixteen_bit(tmp_path: Path) -> None:
    import cv2

    rng = np.random.default_rng(0)
    img = np.clip(30000 + rng.normal(0, 2000, (48, 48, 3)), 0, 65535).astype(np.uint16)
    src = tmp_path / "deep.png"
    cv2.imwrite(str(src), img)
    res = run("smooth", str(src), "-o", str(tmp_path / "out"), "--skin", "none")
    assert res.exit_code == 0, res.output
    got = read_image(tmp_path / "out" / "deep.png").pixels
    assert got.dtype == np.uint16 and got.shape == img.shape
    assert got.std() < img.std()


def test_pixel_limit_option(photos: Path, tmp_path: Path) -> None:
    res = run("smooth", str(photos / "a.jpg"), "-o", str(tmp_path / "o"), "--max-pixels", "100")
    assert res.exit_code == 1 and "a.jpg" in res.stderr


def test_strength_out_of_range_is_a_usage_error(photos: Path, tmp_path: Path) -> None:
    res = run("smooth", str(photos), "-o", str(tmp_path / "o"), "--strength", "2")
    assert res.exit_code == 2


_FREED_BUFFER_STAYS = """
import ctypes, sys
import numpy as np
from meiyan.memory import keep_freed_memory

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = Info
if sys.argv[1] == "tuned":
    assert keep_freed_memory()
buffer = np.ones(16 << 20, np.uint8)
mapped = mallinfo2().hblkhd  # bytes in mmapped blocks, the buffer's if it was mapped
del buffer
sys.exit(0 if mallinfo2().fordblks >= 16 << 20 and mallinfo2().hblkhd == mapped else 3)
"""


def test_the_command_line_keeps_freed_image_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line raises glibc's malloc thresholds once at start: in a fresh process a
    freed 16 MiB buffer then stays in the heap for the next photo instead of going back to the
    system (it does not without); a user's own ``MALLOC_*_`` variables win."""
    calls: list[int] = []
    monkeypatch.setattr("meiyan.cli.main.keep_freed_memory", lambda: calls.append(1))
    assert run("models", "list").exit_code == 0
    assert calls == [1]
    if platform.libc_ver()[0] != "glibc":
        assert not keep_freed_memory()
        return
    for mode, code in (("tuned", 0), ("default", 3)):
        done = subprocess.run([sys.executable, "-c", _FREED_BUFFER_STAYS, mode], check=False)
        assert done.returncode == code, mode
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", str(128 << 10))
    assert not keep_freed_memory()

"""Batch file handling: output collisions, atomic writes, bad inputs, full disk, signals, jobs."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from meiyan.cli.main import main

CLI = [sys.executable, "-c", "from meiyan.cli.main import main; main()"]


def run(*args: str) -> object:
    return CliRunner().invoke(main, list(args))


def photo(path: Path, seed: int = 0, size: int = 48) -> Path:
    rng = np.random.default_rng(seed)
    base = np.array([200, 150, 120], np.float32) + rng.normal(0, 25, (size, size, 3))
    Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(path)
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*.tmp"))


# --------------------------------------------------------------------------- output names


def test_output_folder_equal_to_input_folder_never_writes_over_inputs(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    photo(d / "a.jpg", 1)
    photo(d / "a.png", 2)
    photo(d / "b.jpg", 3)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    res = run("mask", str(d), "-o", str(d), "--overwrite", "--method", "ycrcb", "--jobs", "1")
    assert res.exit_code == 1
    for name in before:
        assert (d / name).read_bytes() == before[name], name  # no input replaced
    assert (d / "b.png").is_file()  # b.jpg's mask: no input of that name
    lines = [x for x in res.stderr.splitlines() if "error" in x]
    assert len(lines) == 2 and all("one of this run's inputs" in x for x in lines)


def test_two_inputs_writing_one_name_are_both_skipped(tmp_path: Path) -> None:
    photo((tmp_path / "x").mkdir() or tmp_path / "x" / "p.jpg", 1)
    photo((tmp_path / "y").mkdir() or tmp_path / "y" / "p.png", 2)
    photo(tmp_path / "x" / "q.jpg", 3)
    out = tmp_path / "out"
    res = run(
        "mask",
        str(tmp_path / "x"),
        str(tmp_path / "y"),
        "-o",
        str(out),
        "--jobs",
        "1",
        "--method",
        "ycrcb",
    )
    assert res.exit_code == 1
    assert sorted(p.name for p in out.iterdir()) == ["q.png"]
    errors = [x for x in res.stderr.splitlines() if "would also be written" in x]
    assert len(errors) == 2 and "p.jpg" in errors[0] and "p.png" in errors[1]


@pytest.mark.slow
def test_concurrent_runs_never_replace_each_others_results(tmp_path: Path) -> None:
    """4 processes over the same 16 files: each output has exactly one writer that succeeded."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(16):
        photo(src / f"p{i:02d}.png", i, 160)
    out = tmp_path / "out"
    procs = [
        subprocess.Popen(
            [
                *CLI,
                "smooth",
                str(src),
                "-o",
                str(out),
                "--skin",
                "none",
                "--strength",
                f"0.{k + 2}",
                "--jobs",
                "1",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(4)
    ]
    refused = 0
    for p in procs:
        _, err = p.communicate(timeout=300)
        refused += err.count("already exists")
    assert sorted(p.name for p in out.iterdir()) == [f"p{i:02d}.png" for i in range(16)]
    assert 4 * 16 - refused == 16  # successes across the runs: one per file
    assert leftovers(out) == []


# ------------------------------------------------------------------------------ bad inputs


@pytest.fixture
def no_hang():
    """Fail instead of hanging forever (a FIFO opened for reading blocks)."""

    def alarm(signum: int, frame: object) -> None:
        raise TimeoutError("the batch blocked")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_fifo_links_and_missing_files_are_one_line_each(tmp_path: Path, no_hang: None) -> None:
    d = tmp_path / "in"
    d.mkdir()
    photo(d / "good.png")
    os.mkfifo(d / "p.jpg")
    (d / "loop.png").symlink_to(d / "loop.png")
    (d / "dangling.png").symlink_to(d / "nowhere.png")
    missing = tmp_path / "missing.jpg"
    out = tmp_path / "out"
    res = run("smooth", str(d), str(missing), "-o", str(out), "--skin", "none", "--jobs", "1")
    assert res.exit_code == 1, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["good.png"]
    errors = [x for x in res.stderr.splitlines() if "meiyan: error:" in x]
    assert len(errors) == 4
    for name, what in [
        ("p.jpg", "FIFO"),
        ("loop.png", "loop"),
        ("dangling.png", "broken"),
        ("missing.jpg", "no such file"),
    ]:
        assert any(name in x and what in x for x in errors), (name, errors)
    assert "Traceback" not in res.output


def test_unreadable_input_is_one_line(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: permissions do not stop reading")
    photo(tmp_path / "good.png")
    locked = photo(tmp_path / "locked.png")
    locked.chmod(0)
    res = run(
        "smooth",
        str(tmp_path / "good.png"),
        str(locked),
        "-o",
        str(tmp_path / "o"),
        "--skin",
        "none",
    )
    assert res.exit_code == 1 and "locked.png: cannot read" in res.stderr


def test_output_folder_errors_are_per_file(tmp_path: Path) -> None:
    a, b = photo(tmp_path / "a.png", 1), photo(tmp_path / "b.png", 2)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for command in (["mask", "--method", "ycrcb"], ["smooth", "--skin", "none"]):
        res = run(command[0], str(a), str(b), "-o", str(blocker / "sub"), *command[1:])
        assert (res.exit_code == 1 and res.exception is None) or isinstance(
            res.exception, SystemExit
        )
        errors = [x for x in res.stderr.splitlines() if "meiyan: error:" in x]
        assert len(errors) == 2 and all("cannot create its folder" in x for x in errors)


def _limited(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_full_disk_is_one_line_per_file_and_leaves_nothing(tmp_path: Path, portrait) -> None:
    """A file system that refuses writes: RLIMIT_FSIZE makes every write past 4 kB fail."""
    d = tmp_path / "in"
    d.mkdir()
    for i in range(3):
        Image.fromarray(np.asarray(portrait)[::2, ::2]).save(d / f"p{i}.png")
    out = tmp_path / "out"
    out.mkdir()
    res = subprocess.run(
        [*CLI, "mask", str(d), "-o", str(out), "--method", "ycrcb", "--jobs", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: _limited(4096),
    )
    assert res.returncode == 1, res.stderr
    errors = [x for x in res.stderr.splitlines() if "meiyan: error:" in x]
    assert len(errors) == 3 and all("cannot write (File too large)" in x for x in errors)
    assert "Traceback" not in res.stderr
    assert list(out.iterdir()) == []  # no truncated result, no temporary file


@pytest.mark.slow
def test_full_disk_landmarks_json_is_never_left_truncated(tmp_path: Path, portrait) -> None:
    Image.fromarray(np.asarray(portrait)).save(tmp_path / "p.jpg")
    out = tmp_path / "out"
    out.mkdir()
    res = subprocess.run(
        [*CLI, "landmarks", str(tmp_path / "p.jpg"), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: _limited(8192),
    )
    assert res.returncode == 1 and "p.json: cannot write" in res.stderr, res.stderr
    assert list(out.iterdir()) == []
    again = run("landmarks", str(tmp_path / "p.jpg"), "-o", str(out))  # a rerun succeeds
    assert again.exit_code == 0 and (out / "p.json").stat().st_size > 8192


# ------------------------------------------------------------------------------- signals

_SLOW_WRITER = """
import sys
from pathlib import Path
from meiyan.cli.batch import run_batch
from meiyan.io.atomic import write_file

def job(path):
    write_file(Path(sys.argv[2]) / (path.stem + ".bin"), path.read_bytes() * 2_000_000)

sys.exit(run_batch(sys.argv[1:2], job, desc="t", jobs=int(sys.argv[3])))
"""


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_signal_during_a_large_write_removes_it_and_exits_130(
    tmp_path: Path, signame: str, jobs: int
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "a_small.png").write_bytes(b"x")  # done first, in 2 MB
    for name in ("b_big.png", "c_big.png"):
        (src / name).write_bytes(b"y" * 200)  # 400 MB each, written while the signal comes
    out = tmp_path / "out"
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(_SLOW_WRITER))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(src), str(out), str(jobs)],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not any(
        p.name.startswith(".b_big") or p.name.startswith(".c_big")
        for p in (out.iterdir() if out.is_dir() else [])
    ):
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
        time.sleep(0.002)
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert leftovers(out) == []
    assert (out / "a_small.bin").stat().st_size == 2_000_000  # finished files are kept
    big = [p for p in out.iterdir() if p.name != "a_small.bin"]
    assert all(p.stat().st_size == 100_000_000 for p in big)  # nothing partial


# ------------------------------------------------------------------------- reports, jobs


def test_warnings_are_one_line_with_the_file_name(tmp_path: Path) -> None:
    """No raw Python warning (with its source line) reaches the terminal."""
    photo(tmp_path / "noface.png")
    res = subprocess.run(
        [*CLI, "smooth", str(tmp_path / "noface.png"), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    lines = [x for x in res.stderr.splitlines() if "warn" in x.lower()]
    assert lines and all(
        x.startswith(f"meiyan: warning: {tmp_path / 'noface.png'}: ") for x in lines
    ), lines
    assert "Warning:" not in res.stderr and "warnings.warn" not in res.stderr


def test_warnings_are_printed_above_the_progress_bar(tmp_path: Path) -> None:
    for i in range(2):
        photo(tmp_path / f"n{i}.png", i)
    res = run(
        "smooth",
        str(tmp_path / "n0.png"),
        str(tmp_path / "n1.png"),
        "-o",
        str(tmp_path / "o"),
        "--jobs",
        "1",
    )
    assert res.exit_code == 0
    lines = [x for x in res.stderr.splitlines() if "meiyan: warning:" in x]
    assert len(lines) == 2  # one per faceless photo, each on a line of its own, not on the bar
    assert all(x.lstrip("\r").startswith("meiyan: warning:") for x in lines), lines


@pytest.mark.slow
def test_jobs_keep_results_order_and_exit_code(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        photo(src / f"p{i}.png", i, 96)
    (src / "p2_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    outputs = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        res = subprocess.run(
            [*CLI, "smooth", str(src), "-o", str(out), "--skin", "none", "--jobs", jobs],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 1
        errors = [x for x in res.stderr.splitlines() if "meiyan: error:" in x]
        assert len(errors) == 1 and "p2_broken.png" in errors[0]
        outputs[jobs] = {p.name: p.read_bytes() for p in out.iterdir()}
    assert outputs["1"] == outputs["2"] and len(outputs["1"]) == 6


def test_jobs_fall_back_to_this_process_where_forking_is_unsafe(tmp_path: Path) -> None:
    import threading

    from meiyan.cli import batch

    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)
    helper.start()  # a live thread: its pool would be dead in forked workers
    try:
        assert not batch._can_fork()
        seen: list[int] = []
        code = batch.run_batch(
            [photo(tmp_path / "a.png"), photo(tmp_path / "b.png")],
            lambda p: seen.append(os.getpid()),
            desc="t",
            jobs=2,
        )
        assert code == 0 and seen == [os.getpid()] * 2
    finally:
        stop.set()
        helper.join()


def test_format_and_quality_options(tmp_path: Path) -> None:
    src = photo(tmp_path / "a.png", 0, 64)
    low = run(
        "smooth",
        str(src),
        "-o",
        str(tmp_path / "low"),
        "--skin",
        "none",
        "--format",
        "jpg",
        "--quality",
        "20",
    )
    high = run(
        "smooth",
        str(src),
        "-o",
        str(tmp_path / "high"),
        "--skin",
        "none",
        "--format",
        "JPG",
        "--quality",
        "98",
    )
    assert low.exit_code == 0 and high.exit_code == 0, low.stderr
    small, big = tmp_path / "low" / "a.jpg", tmp_path / "high" / "a.jpg"
    assert small.stat().st_size < big.stat().st_size
    with Image.open(small) as im:
        assert im.format == "JPEG"
    assert run("smooth", str(src), "-o", str(tmp_path / "x"), "--quality", "0").exit_code == 2


def test_only_missing_inputs_is_a_usage_error_but_one_missing_among_others_is_not(
    tmp_path: Path,
) -> None:
    assert run("smooth", str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "o")).exit_code == 2
    res = run(
        "smooth",
        str(tmp_path / "nope.jpg"),
        str(photo(tmp_path / "a.png")),
        "-o",
        str(tmp_path / "o"),
        "--skin",
        "none",
    )
    assert res.exit_code == 1 and (tmp_path / "o" / "a.png").is_file()


def test_an_interruption_during_the_clean_up_leaves_nothing_after_remove_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second interruption can cut write_file's own clean-up short; the batch runner's
    remove_partial then removes the temporary file."""
    from meiyan.io import atomic

    def interrupted_write(fd: int) -> None:
        raise KeyboardInterrupt  # the first interruption, while the data is flushed

    real_unlink = Path.unlink
    calls = []

    def interrupted_unlink(self: Path, missing_ok: bool = False) -> None:
        calls.append(self)
        if len(calls) == 1:
            raise KeyboardInterrupt  # the second, as the clean-up starts
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(os, "fsync", interrupted_write)
    monkeypatch.setattr(Path, "unlink", interrupted_unlink)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_file(tmp_path / "out.bin", b"x" * 10)
    assert [p.name for p in tmp_path.iterdir()] == [calls[0].name]  # left behind
    atomic.remove_partial()
    assert list(tmp_path.iterdir()) == []

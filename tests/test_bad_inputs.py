"""Every command over the bad-input corpus: no traceback, one line per bad file, the rest done."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bad_inputs import make_corpus
from click.testing import CliRunner
from PIL import Image

from meiyan.cli.main import main

COMMANDS = {
    "smooth": [],
    "beautify": [],
    "mask": [],
    "landmarks": ["--overlay"],
    "makeup": ["--look", "natural"],
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, portrait: np.ndarray) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("corpus")
    expect = make_corpus(folder, np.asarray(portrait))
    Image.fromarray(np.asarray(portrait)[::2, ::2]).save(folder / "zz_good_portrait.jpg")
    return folder, expect


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_survives_the_corpus(
    command: str, corpus: tuple[Path, dict], tmp_path: Path
) -> None:
    folder, expect = corpus
    out = tmp_path / "out"
    res = CliRunner().invoke(
        main, [command, str(folder), "-o", str(out), "--jobs", "1", *COMMANDS[command]]
    )
    assert res.exit_code == 1, res.output
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit)
    assert "Traceback" not in res.output
    lines = res.stderr.replace("\r", "\n").splitlines()
    for name, refused in expect.items():
        mine = [x for x in lines if x.startswith("meiyan:") and f"{folder / name}:" in x]
        if refused:
            assert len(mine) == 1 and mine[0].startswith("meiyan: error:"), (name, mine)
    assert any(p.name.startswith("zz_good_portrait") for p in out.iterdir())
    stray = [x for x in lines if x.strip() and not x.startswith("meiyan:") and "img" not in x]
    assert stray == [], stray  # nothing but meiyan's own lines and the progress bar

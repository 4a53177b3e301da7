"""``meiyan convert``: official checkpoints of published networks to meiyan's ONNX models."""

from __future__ import annotations

import click

from meiyan.cli.edit_cmds import convert_sc_fegan
from meiyan.cli.psgan_cmds import convert_psgan


@click.group("convert")
def convert() -> None:
    """Convert official weights into ONNX files the engines run (needs the `train` extra)."""


convert.add_command(convert_sc_fegan)
convert.add_command(convert_psgan)

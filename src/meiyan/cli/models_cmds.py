"""``meiyan models``: the registered model files, their digests, terms and cards."""

from __future__ import annotations

import json
import sys

import click

from meiyan.errors import MeiyanError
from meiyan.models import registry


def _record(name: str) -> dict[str, object]:
    spec = registry.get_spec(name)
    path = registry.installed_path(name)
    card = spec.card
    if card and "://" not in card:
        card = str(registry.PACKAGE_DIR / card)
    return {
        "name": name,
        "engine": spec.engine,
        "sha256": spec.sha256,
        "size": spec.size,
        "licence": spec.licence,
        "data_terms": spec.data_terms,
        "commercial": spec.commercial,
        "card": card,
        "path": None if path is None else str(path),
        "inputs": [[n, list(s)] for n, s in spec.inputs],
        "outputs": [[n, list(s)] for n, s in spec.outputs],
        "url": spec.url,
        "description": spec.description,
    }


@click.group("models")
def models() -> None:
    """The model files meiyan uses: list, verify, locate and fetch them."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model, for machines.")
def list_cmd(as_json: bool) -> None:
    """One line per model: name, engine, SHA-256, size, licence and data terms, card."""
    for name in registry.names():
        rec = _record(name)
        if as_json:
            click.echo(json.dumps(rec))
            continue
        use = "commercial use allowed" if rec["commercial"] else "NON-COMMERCIAL"
        where = "installed" if rec["path"] else "not installed"
        click.echo(
            f"{name}  engine={rec['engine']}  sha256={rec['sha256']}  {rec['size']:,} bytes  "
            f"licence: {rec['licence']}; data: {rec['data_terms']} ({use})  "
            f"card: {rec['card']}  [{where}]"
        )


@models.command("verify")
@click.argument("names", nargs=-1)
def verify_cmd(names: tuple[str, ...]) -> None:
    """Check the SHA-256 of each installed model (default: all); exit 1 on a mismatch."""
    failed = 0
    for name in names or registry.names():
        try:
            if registry.installed_path(name) is None and not names:
                click.echo(f"{name}: not installed")
                continue
            click.echo(f"{name}: ok {registry.model_path(name)}")
        except MeiyanError as e:
            click.echo(f"meiyan: error: {e}", err=True)
            failed += 1
    sys.exit(1 if failed else 0)


@models.command("path")
@click.argument("name")
def path_cmd(name: str) -> None:
    """Print the verified path of model NAME."""
    try:
        click.echo(registry.model_path(name))
    except MeiyanError as e:
        click.echo(f"meiyan: error: {e}", err=True)
        sys.exit(1)


@models.command("fetch")
@click.argument("name")
@click.option(
    "--from",
    "source",
    help="A URL or local file to install from instead of the registered URL.",
)
def fetch_cmd(name: str, source: str | None) -> None:
    """Install model NAME into the user cache, verified by its SHA-256."""
    try:
        click.echo(registry.fetch(name, source))
    except MeiyanError as e:
        click.echo(f"meiyan: error: {e}", err=True)
        sys.exit(1)

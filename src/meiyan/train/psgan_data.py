"""Synthetic makeup-transfer triples for PSGAN (W. Jiang et al., CVPR 2020) without MT.

The MT and Makeup-Wild datasets cannot be had here, so triples are made with meiyan's own
virtual makeup (:mod:`meiyan.makeup.layers`), whose result is known exactly:

- **source**: a face as photographed (``celeba-hq-1k``, ``lfw-parts``, FASSEG; never
  ``portraits/``, which ``bench/makeup.py`` scores), or, for a share ``worn`` of the training
  samples, the same face already wearing another random look (so that makeup is replaced);
- **reference**: another face wearing a random look L (:func:`random_look`: colours,
  strengths, lipstick finish, and which layers are present, drawn from ranges around real
  cosmetics; the look model has no glitter and one eyeliner shape, so those do not vary);
- **target**: the source's own face wearing L.

Faces are found once (:func:`meiyan.face.analyze`, the largest face; profiles beyond
:data:`MAX_YAW` left out) and cut to PSGAN's aligned 256x256 crop by the engine's own
:class:`meiyan.makeup.psgan.engine.AlignedFace`; :func:`pack` stores the crops (JPEG) and their
478 landmarks in one ``.npz``, cached under ``~/.cache/meiyan/data`` (or written to a path
given): the file the GPU script carries, which needs neither the datasets nor MediaPipe. Faces
of the datasets' validation splits are stored as the holdout.

:func:`make_triple` paints the looks on the crops (the change in Lab added to the RGB crop, as
the classical engine does, so that the target equals the source bit for bit outside the look's
layers), warps the reference onto the source (:func:`~meiyan.makeup.psgan.engine.
warp_reference`) and builds the network inputs with the engine's
:func:`~meiyan.makeup.psgan.engine.network_inputs`: training and inference see the same crops,
masks and landmarks. Every random choice comes from a generator the caller seeds.

``meiyan train psgan-pack`` (defined here; ``python -m meiyan.train.psgan_data`` runs it on its
own) makes the pack, ``meiyan train psgan`` trains on it.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import click
import cv2
import numpy as np

from meiyan.errors import MeiyanError
from meiyan.makeup.colour import lab_to_rgb, rgb_to_lab
from meiyan.makeup.layers import Blush, BrowTint, Eyeliner, Eyeshadow, Foundation, Layer, Lipstick
from meiyan.makeup.looks import Look
from meiyan.makeup.psgan.engine import AlignedFace, network_inputs, warp_reference
from meiyan.makeup.psgan.landmarks68 import BROWS, LEFT_EYE, MOUTH, RIGHT_EYE
from meiyan.makeup.regions import REGION_NAMES
from meiyan.train.datasets import IMAGE_SUFFIXES, read_rgb

FORMAT = "meiyan-psgan-pack/1"
SOURCES: dict[str, tuple[str, str, str]] = {
    "celeba": ("celeba-hq-1k", "train", "validation"),
    "lfw": ("lfw-parts", "train", "validation"),
    "fasseg": ("fasseg-multipose", "train", "test"),
}
"""Dataset: (folder under the shared data folder, training split, held-out split)."""
MAX_YAW = 40.0
"""Faces turned further (degrees) are left out: their masks and warps are unreliable."""
JPEG_QUALITY = 90
CRITIC_REGIONS = ("brow", "eye", "lip")
"""The region critics (:data:`meiyan.makeup.psgan.discriminators.REGION_KINDS`), in the order
of ``critic_masks``."""
CRITIC_SIZES: dict[str, tuple[int, int]] = {"brow": (32, 64), "eye": (48, 64), "lip": (48, 96)}
"""``(h, w)`` of each critic's crops of the 256x256 face (multiples of 8)."""
_EYE_RAISE = 8  # eye crops are centred this many pixels above the eye, to take in the lid


def _hex(hue: float, sat: float, val: float) -> str:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, sat, val)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def _colour(rng: np.random.Generator, hues: Sequence[tuple[float, float]],
            sat: tuple[float, float], val: tuple[float, float]) -> str:
    """A colour with hue (degrees) in one of ``hues`` and saturation and value in ranges."""
    lo, hi = hues[rng.integers(len(hues))]
    return _hex(rng.uniform(lo, hi) / 360.0, rng.uniform(*sat), rng.uniform(*val))


def random_look(rng: np.random.Generator) -> Look:
    """A random look: each layer present with its own probability, colour and strength.

    Lips: reds, pinks, corals, nudes, berries and plums (90%); eye shadow: any hue, mostly
    muted (80%); liner: near black or dark brown (50%); blush: pinks to peach (60%); brows:
    dark browns (50%); foundation: the person's own tone or a skin shade (50%). A look has at
    least lipstick or eye shadow.
    """
    layers: list[Layer] = []
    if rng.random() < 0.5:
        own = rng.random() < 0.5
        colour = "" if own else _colour(rng, [(15, 35)], (0.2, 0.55), (0.45, 0.95))
        layers.append(Foundation(color=colour, strength=rng.uniform(0.2, 0.6)))
    if rng.random() < 0.6:
        colour = _colour(rng, [(340, 390)], (0.3, 0.7), (0.75, 0.95))
        layers.append(Blush(color=colour, strength=rng.uniform(0.1, 0.45)))
    eyes = rng.random() < 0.8
    if eyes:
        colour = _colour(rng, [(0, 360)], (0.1, 0.7), (0.2, 0.8))
        layers.append(Eyeshadow(color=colour, strength=rng.uniform(0.2, 0.8)))
    if rng.random() < 0.5:
        colour = _colour(rng, [(0, 40), (200, 280)], (0.0, 0.5), (0.03, 0.25))
        layers.append(Eyeliner(color=colour, strength=rng.uniform(0.4, 0.95)))
    if rng.random() < 0.5:
        colour = _colour(rng, [(15, 35)], (0.2, 0.6), (0.1, 0.35))
        layers.append(BrowTint(color=colour, strength=rng.uniform(0.2, 0.6)))
    if not eyes or rng.random() < 0.9:
        colour = _colour(rng, [(300, 390)], (0.3, 0.9), (0.25, 0.8))
        finish = "gloss" if rng.random() < 0.5 else "matte"
        layers.append(Lipstick(color=colour, strength=rng.uniform(0.3, 0.95), finish=finish))
    return Look(name="random", description="drawn by meiyan.train.psgan_data", layers=tuple(layers))


def paint(face: AlignedFace, look: Look) -> np.ndarray:
    """The face's crop wearing ``look`` at full shade: the change in Lab added to the RGB, so
    pixels outside the look's layers keep their values exactly."""
    from meiyan.makeup.virtual import apply_look

    lab = rgb_to_lab(face.rgb)
    made = apply_look(lab, face.points, look, dict.fromkeys(REGION_NAMES, 1.0), face.parts)
    return np.clip(face.rgb + (lab_to_rgb(made) - lab_to_rgb(lab)), 0.0, 1.0).astype(np.float32)


def critic_masks(face: AlignedFace) -> np.ndarray:
    """``(3, 256, 256)`` float32 masks of the brows, eye makeup (shadow and liner) and lips."""
    hard = face.parts[1]
    eyes = np.maximum(hard["eye_shadow"], hard["eyeliner"])
    return (np.stack([hard["brows"], eyes, hard["lips"]]) > 0.5).astype(np.float32)


def critic_boxes(face: AlignedFace) -> np.ndarray:
    """``(5, 2)`` int64 top-left corners ``(y, x)`` of the critics' crops: right brow, left
    brow, right eye, left eye, lips (sizes :data:`CRITIC_SIZES`), inside the crop."""
    p = face.points68
    side = face.rgb.shape[0]
    brows = p[BROWS]
    centres = [
        ("brow", brows[:5].mean(axis=0)),
        ("brow", brows[5:].mean(axis=0)),
        ("eye", p[RIGHT_EYE].mean(axis=0) - (0, _EYE_RAISE)),
        ("eye", p[LEFT_EYE].mean(axis=0) - (0, _EYE_RAISE)),
        ("lip", p[MOUTH].mean(axis=0)),
    ]
    boxes = []
    for region, (cx, cy) in centres:
        h, w = CRITIC_SIZES[region]
        y = int(np.clip(round(cy - h / 2), 0, side - h))
        x = int(np.clip(round(cx - w / 2), 0, side - w))
        boxes.append((y, x))
    return np.array(boxes, np.int64)


def make_triple(
    source: AlignedFace, reference: AlignedFace, look: Look, worn: Look | None = None
) -> dict[str, np.ndarray]:
    """One training sample: the engine's network inputs (:func:`network_inputs`, shade left
    out) for ``source`` (wearing ``worn`` when given) and ``reference`` wearing ``look``,
    ``target`` (``(3, 256, 256)``: the source's face wearing ``look``), ``critic_masks`` and
    ``critic_boxes`` of the source; float32 images in [0, 1]."""
    shown = replace(source, rgb=paint(source, worn)) if worn is not None else source
    made_ref = replace(reference, rgb=paint(reference, look))
    sample = network_inputs(shown, *warp_reference(made_ref, source))
    sample["target"] = np.ascontiguousarray(paint(source, look).transpose(2, 0, 1))
    sample["critic_masks"] = critic_masks(source)
    sample["critic_boxes"] = critic_boxes(source)
    return sample


def _encode(rgb: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise MeiyanError("cannot encode a face crop as JPEG")
    return data.tobytes()


def _photos(data: Path, datasets: Sequence[str], limit: int | None,
            holdout: int) -> Iterator[tuple[str, Path, bool]]:
    """``(dataset, photo, held out)``: up to ``limit`` training photos and ``holdout``
    held-out photos per dataset, the held-out ones spread evenly over their split."""
    for name in datasets:
        folder, train_split, val_split = SOURCES[name]
        for split, count, held in ((train_split, limit, False), (val_split, holdout, True)):
            images = data / folder / split / "images"
            if not images.is_dir():
                raise MeiyanError(f"{images} not found")
            paths = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if held:
                paths = paths[:: max(1, len(paths) // max(count, 1))]
            for path in paths[:count]:
                yield name, path, held


def pack(
    data: Path,
    out: Path,
    datasets: Sequence[str] = tuple(SOURCES),
    *,
    limit: int | None = None,
    holdout: int = 24,
    quality: int = JPEG_QUALITY,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Analyse the photos of ``datasets`` under the shared data folder ``data`` and write
    their aligned crops and landmarks to ``out`` (``.npz``); returns faces kept per dataset
    and split (``"lfw/train"``...)."""
    from meiyan.face import analyze

    blobs: list[bytes] = []
    points, names, sets, held_out = [], [], [], []
    counts: dict[str, int] = {}
    for name, path, held in _photos(Path(data), datasets, limit, holdout):
        image = read_rgb(path)
        faces = [f for f in analyze(image) if abs(f.pose.yaw) <= MAX_YAW]
        if not faces:
            continue
        face = AlignedFace.of(image, max(faces, key=lambda f: f.size).landmarks)
        blobs.append(_encode(np.round(face.rgb * 255).astype(np.uint8), quality))
        points.append(face.points.astype(np.float32))
        names.append(path.stem)
        sets.append(name)
        held_out.append(held)
        key = f"{name}/{'holdout' if held else 'train'}"
        counts[key] = counts.get(key, 0) + 1
        if progress and len(names) % 100 == 0:
            progress(f"{len(names)} faces ({path})")
    if not names:
        raise MeiyanError(f"no usable faces in {data} ({', '.join(datasets)})")
    header = {"format": FORMAT, "quality": quality, "max_yaw": MAX_YAW, "counts": counts}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, jpeg=np.frombuffer(b"".join(blobs), np.uint8),
             offsets=np.cumsum([0, *map(len, blobs)]).astype(np.int64),
             points=np.stack(points), name=np.array(names), dataset=np.array(sets),
             holdout=np.array(held_out), header=np.array(json.dumps(header)))
    tmp.replace(out)
    return counts


def cached_pack(data: Path, limit: int | None = None, holdout: int = 24,
                progress: Callable[[str], None] | None = None) -> Path:
    """The pack of the shared data folder ``data`` in the cache, made when missing."""
    from meiyan.train.trainer import data_dir

    photos = sorted(str(p.relative_to(data)) for _, p, _ in _photos(data, tuple(SOURCES),
                                                                    limit, holdout))
    key = hashlib.sha256(json.dumps([FORMAT, MAX_YAW, JPEG_QUALITY, photos]).encode())
    path = data_dir() / f"psgan-{key.hexdigest()[:16]}.npz"
    if not path.is_file():
        pack(data, path, limit=limit, holdout=holdout, progress=progress)
    return path


class FacePack:
    """A pack read back: ``len(pack)`` faces, ``pack.face(i)`` an :class:`AlignedFace`."""

    def __init__(self, path: str | Path) -> None:
        with np.load(path) as z:
            self.header = json.loads(str(z["header"]))
            if self.header.get("format") != FORMAT:
                raise MeiyanError(f"{path} is not a meiyan PSGAN pack ({self.header})")
            self._jpeg, self._offsets = z["jpeg"], z["offsets"]
            self.points, self.name = z["points"], z["name"]
            self.dataset, self.holdout = z["dataset"], z["holdout"]

    def __len__(self) -> int:
        return len(self.name)

    def indices(self, holdout: bool) -> np.ndarray:
        """Positions of the training (``False``) or held-out (``True``) faces."""
        return np.nonzero(self.holdout == holdout)[0]

    def face(self, i: int) -> AlignedFace:
        """Face ``i``: its crop as float32 RGB, landmarks, masks."""
        data = self._jpeg[self._offsets[i] : self._offsets[i + 1]]
        rgb = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        return AlignedFace.at(rgb.astype(np.float32) / 255.0, self.points[i])


def draw_faces(faces: FacePack, ids: np.ndarray, index: int, rng: np.random.Generator,
               worn: float = 0.0) -> tuple[AlignedFace, AlignedFace, Look, Look | None]:
    """What the triple of source ``ids[index]`` is made of: the source, a reference face and a
    look drawn by ``rng``, and another look already worn by the source (with probability
    ``worn``; else ``None``)."""
    if len(ids) < 2:
        raise MeiyanError("a triple needs at least two faces")
    other = (index + 1 + int(rng.integers(len(ids) - 1))) % len(ids)
    look = random_look(rng)
    worn_look = random_look(rng) if rng.random() < worn else None
    return faces.face(int(ids[index])), faces.face(int(ids[other])), look, worn_look


def draw_triple(faces: FacePack, ids: np.ndarray, index: int, rng: np.random.Generator,
                worn: float = 0.0) -> dict[str, np.ndarray]:
    """The triple of source ``ids[index]`` (:func:`draw_faces`, :func:`make_triple`)."""
    return make_triple(*draw_faces(faces, ids, index, rng, worn))


# `meiyan train psgan-pack` (added to the train group by meiyan.cli.train_cmds).


@click.command("psgan-pack")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False),
              help="The shared data folder (celeba-hq-1k/, lfw-parts/, fasseg-multipose/).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The .npz pack to write.")
@click.option("--dataset", "datasets", multiple=True, default=tuple(SOURCES), show_default=True,
              type=click.Choice(list(SOURCES)), help="A dataset to pack (repeat for several).")
@click.option("--limit", default=None, type=click.IntRange(min=1),
              help="Training photos per dataset (default: all).")
@click.option("--holdout", default=24, show_default=True, type=click.IntRange(min=0),
              help="Held-out photos per dataset (from its validation or test split).")
@click.option("--quality", default=JPEG_QUALITY, show_default=True,
              type=click.IntRange(50, 100), help="JPEG quality of the stored crops.")
def train_psgan_pack(data: str, output: str, datasets: tuple[str, ...], limit: int | None,
                     holdout: int, quality: int) -> None:
    """Find and align the faces PSGAN's synthetic triples are made of, into one file."""
    out = Path(output)
    if out.exists():
        raise click.ClickException(f"{out} exists; remove it or choose another name")
    try:
        counts = pack(Path(data), out, datasets, limit=limit, holdout=holdout, quality=quality,
                      progress=click.echo)
    except MeiyanError as e:
        raise click.ClickException(str(e)) from e
    shown = ", ".join(f"{k} {v}" for k, v in counts.items())
    click.echo(f"{shown} faces in {out} ({out.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    train_psgan_pack()

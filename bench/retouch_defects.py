"""Blemish and tone removal per defect type, classic and abpn engines, on faces not trained on.

    .venv/bin/python bench/retouch_defects.py [--faces 30] [--fasseg 20] [--seed 0]
        [--split test|train] [--engines classic,abpn] [--blemish 1] [--tone 1] [--runs 5]
        [--skip-speed] [--abpn-model MODEL.onnx]

Faces: the first ``--faces`` of ``celeba-hq-1k/validation`` and ``--fasseg`` of the frontal
and half-profile FASSEG ``test`` photos (poses 0 and ±30 degrees, evenly spaced), from
``../shared/data`` (or ``$MEIYAN_DATA``); ABPN was trained on other faces (``celeba-hq-1k/train``,
FASSEG ``train``). ``--split train`` takes the faces from those training sets instead, to tune
the classical engine on (with a ``--seed`` other than the benchmark's 0) without looking at the
benchmark's faces. Defects come from the training generator (:mod:`meiyan.train.defects`) with
another seed, one type at a time per face: 8 spots (1-15 px, Gaussian, flat or ring, red,
brown, dark or pale, 30-90%), 2 acne clusters, 3 moles, 2 redness patches, 2 blotches, uneven
tone, under-eye darkness. Each engine runs with blemish and tone on (``--blemish``,
``--tone``), smoothing, whitening and detail off, on the faces found in the blemished photo.

Reported per type and engine: PSNR to the clean face over the defects (opacity above 5%)
before and after; detection recall (a small defect counts when the engine's removal map, heal
opacity for classic and the network's blemish mask for abpn, exceeds 0.5 within its radius
plus 2 px) and precision (connected parts of that map touching a defect, over all parts but
those the clean face shows too), small defects only; PSNR outside skin (what the engine changed:
FASSEG labels other than skin and nose, CelebA hair); fine-texture energy kept in clean skin
(the generator's skin at 0.9 or more, away from every defect: mean square of luma minus its
Gaussian blur, sigma 1, after over before). Moles are reported apart: the share kept (at least
80% of their contrast left) and their PSNR to the target, which keeps them. Speed: median of
``--runs`` calls of ``beautify`` (defaults but the engine) on the 6000x4000 portrait and on it
reduced to 1920 px (1080p), after one warm-up, the engines taking turns call by call.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

import meiyan
from meiyan.io.image import read_image
from meiyan.retouch.beautify import SLOT, BeautifyResult, retouch
from meiyan.retouch.crops import full_mask
from meiyan.train.defects import KINDS, LOCAL, Defected, FaceSample, prepare, synthesize

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MEIYAN_DATA", REPO.parent / "shared" / "data"))
COUNTS = {"spot": 8, "acne": 2, "mole": 3, "redness": 2, "blotch": 2, "uneven": 1, "undereye": 1}
SPEED_IMAGE = "hires_pexels_ike_louie_natividad_2709388.jpg"
_AT = 0.05


def use_abpn_model(path: str) -> None:
    """Run the ``abpn`` engine on the ONNX model at ``path`` instead of the shipped one."""
    from meiyan.retouch.abpn.engine import AbpnNetwork, AbpnRetouch

    spec = SLOT.spec("abpn")
    SLOT.register(
        "abpn",
        lambda: AbpnRetouch(AbpnNetwork(path)),
        score=spec.score,
        jobs=spec.jobs,
        description=f"ABPN from {path}",
    )


def load_faces(
    n: int, n_fasseg: int, split: str = "test"
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, RGB uint8, outside-skin mask)`` of every benchmark face (``split`` ``"test"``:
    CelebA-HQ validation and FASSEG test faces; ``"train"``: both training sets)."""
    out = []
    celeba = DATA / "celeba-hq-1k" / ("validation" if split == "test" else "train")
    for path in sorted((celeba / "images").glob("*.jpg"))[:n]:
        hair = cv2.imread(str(celeba / "hair" / f"{path.stem}.png"), cv2.IMREAD_GRAYSCALE)
        out.append((f"celeba/{path.stem}", read_image(path).pixels, hair > 127))
    fasseg = DATA / "fasseg-multipose" / split
    paths = [
        p
        for p in sorted((fasseg / "images").glob("*.jpg"))
        if p.stem.endswith(("p0p0", "p0m30", "p0p30"))
    ]
    for path in paths[:: max(1, len(paths) // max(n_fasseg, 1))][:n_fasseg]:
        labels = cv2.imread(str(fasseg / "labels" / f"{path.stem}.png"), cv2.IMREAD_UNCHANGED)
        out.append((f"fasseg/{path.stem}", read_image(path).pixels, ~np.isin(labels, (1, 4))))
    return out


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    if not where.any():
        return math.nan
    d = a.astype(np.float64)[where] - b.astype(np.float64)[where]
    mse = float(np.mean(d * d))
    return 99.0 if mse == 0 else 10 * math.log10(255.0**2 / mse)


def removal_map(result: BeautifyResult, shape: tuple[int, int]) -> np.ndarray:
    """Where the engine removes blemishes, full size: heal opacity (classic) or the network's
    blemish mask times skin (abpn)."""
    out = np.zeros(shape, np.float32)
    for rec in result.crops:
        found = getattr(rec, "blemish_map", None)
        if found is None:
            return result.blemish_mask()
        x0, y0, x1, y1 = rec.crop.box
        m = full_mask(found * rec.mask, rec.crop)
        np.maximum(out[y0:y1, x0:x1], m, out=out[y0:y1, x0:x1])
    return out


def detection(d: Defected, found: np.ndarray, natural: np.ndarray) -> tuple[int, int, int, int]:
    """``(hit, total, true parts, counted parts)`` of the small defects against ``found``."""
    hit = total = 0
    yy, xx = np.mgrid[: found.shape[0], : found.shape[1]]
    near = np.zeros(found.shape, bool)
    det = found > 0.5
    for p in d.defects:
        if p.kind not in LOCAL:
            continue
        disc = np.hypot(xx - p.x, yy - p.y) <= p.radius + 2
        near |= disc
        if p.kind == "mole":
            continue
        total += 1
        hit += bool(det[disc].any())
    n, labels = cv2.connectedComponents(det.astype(np.uint8))
    good = counted = 0
    for i in range(1, n):
        part = labels == i
        if near[part].any():
            good += 1
            counted += 1
        elif not natural[part].any():
            counted += 1
    return hit, total, good, counted


def texture_energy(img: np.ndarray, where: np.ndarray) -> float:
    y = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    hp = y - cv2.GaussianBlur(y, (0, 0), 1.0)
    return float(np.mean(hp[where] ** 2))


def to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def quality(args: argparse.Namespace, engines: list[str]) -> None:
    faces = load_faces(args.faces, args.fasseg, args.split)
    stats: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    settings = {
        "blemish": args.blemish,
        "tone": args.tone,
        "smooth": 0.0,
        "whiten": 0.0,
        "detail": 0.0,
    }
    used = 0
    for fi, (name, rgb, outside) in enumerate(faces):
        sample = prepare(rgb)
        if not sample.under_eyes:
            print(f"  {name}: no face found, skipped")
            continue
        used += 1
        clean = sample.image
        clean_u8 = rgb
        yy, xx = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
        natural = {
            e: removal_map(retouch(clean_u8, engine=e, **settings), rgb.shape[:2]) > 0.5
            for e in engines
        }
        for ki, kind in enumerate(KINDS):
            rng = np.random.default_rng([1000 + args.seed, fi, ki])
            n = COUNTS[kind]
            d = synthesize(FaceSample(clean, sample.skin, sample.under_eyes), rng, {kind: (n, n)})
            spotted = to_u8(d.image)
            target = to_u8(d.target)
            found = meiyan.analyze(spotted)
            at = d.moles > _AT if kind == "mole" else (d.blemish > _AT) | (d.tone > _AT)
            away = np.maximum(np.maximum(d.blemish, d.moles), d.tone if kind != "uneven" else 0)
            away = cv2.dilate((away > 0.02).astype(np.uint8), np.ones((7, 7), np.uint8)) == 0
            clean_skin = (sample.skin >= 0.9) & away
            for engine in engines:
                res = retouch(spotted, faces=found, engine=engine, **settings)
                out = res.image
                row = stats[(kind, engine)]
                row["before"].append(psnr(target, spotted, at))
                row["after"].append(psnr(target, out, at))
                row["outside"].append(psnr(spotted, out, outside))
                if clean_skin.sum() > 100:
                    row["texture"].append(
                        texture_energy(out, clean_skin)
                        / max(texture_energy(clean_u8, clean_skin), 1e-9)
                    )
                if kind in ("spot", "acne"):
                    h, t, g, c = detection(d, removal_map(res, rgb.shape[:2]), natural[engine])
                    row["hit"].append(h)
                    row["total"].append(t)
                    row["good"].append(g)
                    row["counted"].append(c)
                if kind == "mole":
                    for p in d.defects:
                        disc = np.hypot(xx - p.x, yy - p.y) <= p.radius
                        depth = float(
                            np.mean(
                                clean_u8[disc].astype(np.float32) - spotted[disc].astype(np.float32)
                            )
                        )
                        left = float(
                            np.mean(
                                clean_u8[disc].astype(np.float32) - out[disc].astype(np.float32)
                            )
                        )
                        row["kept"].append(float(left >= 0.8 * depth))
    print(
        f"{used} faces ({len(faces) - used} skipped), seed {args.seed}, blemish {args.blemish}, "
        f"tone {args.tone}, smoothing and whitening off\n"
    )
    print(
        "| defect | engine | PSNR at defects before -> after | recall | precision | "
        "PSNR outside skin | texture kept |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    gains: dict[str, list[float]] = defaultdict(list)
    for kind in KINDS:
        for engine in engines:
            row = stats[(kind, engine)]
            b, a = np.nanmean(row["before"]), np.nanmean(row["after"])
            if kind != "mole":
                gains[engine].append(a - b)
            rec = prec = "-"
            if row["total"]:
                rec = f"{sum(row['hit']) / max(sum(row['total']), 1):.3f}"
                prec = f"{sum(row['good']) / max(sum(row['counted']), 1):.3f}"
            if kind == "mole":
                rec = f"kept {np.mean(row['kept']):.3f}"
            fin = [v for v in row["outside"] if math.isfinite(v)]
            tex = f"{np.mean(row['texture']):.3f}" if row["texture"] else "-"
            change = f"{b:.1f} -> {a:.1f} ({a - b:+.1f} dB)"
            if kind == "mole":  # the target keeps them: only what the engine changed there
                change = f"kept in target -> {a:.1f}"
            print(
                f"| {kind} | {engine} | {change} | {rec} | {prec} | "
                f"{np.mean(fin):.1f} dB (worst {min(fin):.1f}) | {tex} |"
            )
    print()
    for engine in engines:
        tex = [v for kind in KINDS for v in stats[(kind, engine)]["texture"]]
        outside = [v for kind in KINDS for v in stats[(kind, engine)]["outside"]]
        print(
            f"{engine}: mean gain over the types other than moles {np.mean(gains[engine]):+.2f} "
            f"dB (target >= +6), PSNR outside skin {np.mean(outside):.1f} dB (target >= 45), "
            f"texture kept {np.mean(tex):.3f} (target >= 0.90), moles kept "
            f"{np.mean(stats[('mole', engine)]['kept']):.3f}"
        )


def speed(runs: int, engines: list[str]) -> None:
    big = read_image(DATA / "portraits" / SPEED_IMAGE).pixels
    h, w = big.shape[:2]
    s = 1920 / max(h, w)
    hd = cv2.resize(big, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    print(f"\nspeed: {os.cpu_count()} cores, {runs} runs, load average {os.getloadavg()[0]:.1f}\n")
    print("| image | " + " | ".join(f"{e} median" for e in engines) + " |")
    print("|---|" + "---:|" * len(engines))
    for label, img in ((f"{w}x{h}", big), (f"{hd.shape[1]}x{hd.shape[0]}", hd)):
        times: dict[str, list[float]] = {engine: [] for engine in engines}
        for engine in engines:  # warm-up: models load
            meiyan.beautify(img, engine=engine)
        # The engines take turns, so that a change in the machine's load falls on all alike.
        for _ in range(runs):
            for engine in engines:
                t = time.perf_counter()
                meiyan.beautify(img, engine=engine)
                times[engine].append(time.perf_counter() - t)
        cells = [f"{statistics.median(times[e]) * 1000:.0f} ms" for e in engines]
        print(f"| {label} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=30, help="CelebA-HQ validation faces")
    ap.add_argument("--fasseg", type=int, default=20, help="FASSEG test faces")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--split",
        choices=("test", "train"),
        default="test",
        help="test: CelebA-HQ validation and FASSEG test faces; train: their training sets",
    )
    ap.add_argument("--engines", default="classic,abpn")
    ap.add_argument("--blemish", type=float, default=1.0)
    ap.add_argument("--tone", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--abpn-model", help="an abpn ONNX model to run instead of the shipped one")
    args = ap.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"data not found at {DATA} (../shared/data or $MEIYAN_DATA)")
    if args.abpn_model:
        use_abpn_model(args.abpn_model)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if not args.skip_quality:
        quality(args, engines)
    if not args.skip_speed:
        speed(args.runs, engines)


if __name__ == "__main__":
    main()

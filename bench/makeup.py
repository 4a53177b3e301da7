"""Reference makeup transfer on real portraits: colour distances, untouched background, structure.

    .venv/bin/python bench/makeup.py [--data ../shared/data/portraits] [--out bench/results]
    .venv/bin/python bench/makeup.py --engines classic,psgan --weights psgan.onnx
    .venv/bin/python bench/makeup.py --figure docs/makeup_astronaut.jpg   # the README picture

Every ``plain_*`` photo is made up with every ``makeup_ref_*`` reference (all regions, shade 1).
Per region (lips, eyes, skin, brows, blush: the hard masks of :mod:`meiyan.makeup.regions`,
each image's own; skin is the bare skin away from other makeup, and in skin and blush pixels
unlike the region's own colour, such as hair across the face, weigh less, as the transfer
measures them), two distances to the reference's colour in CIE Lab:

- ``dE``: distance between the region's mean Lab colours (CIE 1976 delta E of the means);
- ``W1``: histogram distance, the 1-D Wasserstein (earth mover's) distance between the
  region's L, a and b histograms, averaged over the three channels (Lab units).

``red%`` is how much the distance of the result falls from that of the source (target: at least
60%). Outside the source's face oval the result must equal the source (PSNR >= 40 dB), and the
face keeps its structure: SSIM (Z. Wang et al., "Image quality assessment: from error
visibility to structural similarity", IEEE TIP 2004; Gaussian window, sigma 1.5) of the
luminance inside the face oval >= 0.9. A grid of results (sources by references) is written to
``--out`` (git-ignored: the pictures come from the shared data and stay out of the repository).

Three more figures per engine:

- **skin kept**: every pair made up on every region but skin; the source's bare skin must keep
  its colour: mean CIEDE2000 (G. Sharma et al., Color Res. Appl. 30(1), 2005) between source
  and result over the skin region, weighted as above, <= 2;
- **self-transfer**: each source made up after itself, G(x, x); PSNR to x inside the face
  oval >= 30 dB (outside it nothing changes anyway);
- **synthetic triples**: the first ``--triples`` held-out triples of PSGAN's validation
  (:mod:`meiyan.train.psgan_data`: held-out faces of the pack, looks drawn from (0, index), as
  ``meiyan train psgan`` validates), the source made up after the reference face wearing a
  random look; PSNR to the target (the source wearing that look) on the 256x256 crop, beside
  the source's own PSNR to it. Needs the pack (``--pack``; ``meiyan train psgan-pack``).

``--engines`` scores several engines of the makeup slot one after the other; ``psgan`` needs
``--weights`` (an ONNX file from ``meiyan convert psgan`` or ``meiyan export psgan``).

``--figure`` instead writes the README's picture: virtual looks on the project's own
public-domain sample portrait (no shared data involved).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.color import deltaE_ciede2000
from skimage.metrics import structural_similarity

from meiyan.face import region_mask
from meiyan.makeup import REGION_NAMES, makeup
from meiyan.makeup.colour import rgb_to_lab
from meiyan.makeup.faces import find_faces, main_face
from meiyan.makeup.transfer import Reference, analyse

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "src" / "meiyan" / "data" / "astronaut.jpg"
FIGURE_LOOKS = ("natural", "office", "party", "smoky")
TARGET_REDUCTION = 0.6
TARGET_PSNR = 40.0
TARGET_SSIM = 0.9
TARGET_SKIN_DE = 2.0
TARGET_SELF_PSNR = 30.0
JND = 2.3  # just-noticeable colour difference in delta E*ab (M. Mahy et al., CR&A 19(2), 1994)


def default_data() -> Path:
    return Path(os.environ.get("MEIYAN_DATA", REPO.parent / "shared" / "data")) / "portraits"


def u8(rgb: np.ndarray) -> np.ndarray:
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def held_out_triples(pack: Path, count: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The first ``count`` triples of PSGAN's validation set as uint8 crops: source, reference
    wearing the look, target (the source wearing it)."""
    from meiyan.train.psgan_data import FacePack, draw_faces, paint

    faces = FacePack(pack)
    ids = faces.indices(True)[:32]  # PSGANConfig.val_limit's default
    triples = []
    for index in range(min(count, len(ids))):
        rng = np.random.default_rng([0, index])
        source, reference, look, _ = draw_faces(faces, ids, index, rng)
        triples.append((u8(source.rgb), u8(paint(reference, look)), u8(paint(source, look))))
    return triples


def load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def region_masks(image: np.ndarray) -> dict[str, np.ndarray]:
    """Weights of the measured regions, from the image's own face, and its face oval."""
    face = main_face(image, "image")
    h, w = image.shape[:2]
    lab = rgb_to_lab(image.astype(np.float32) / 255)
    weights = analyse(lab, face.landmarks).weights
    return weights | {"oval": region_mask(face.landmarks, "face_oval", (h, w))}


def quantiles(values: np.ndarray, weights: np.ndarray, n: int = 256) -> np.ndarray:
    """Weighted quantile function of 1-D ``values`` at ``n`` mid-points."""
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    q = (np.arange(n) + 0.5) / n * cum[-1]
    return values[order][np.minimum(np.searchsorted(cum, q), len(order) - 1)]


def distances(lab_a, mask_a, lab_b, mask_b) -> tuple[float, float, float, float]:
    """Between two masked regions: mean-colour delta E, and the Wasserstein-1 distance of the
    L, a and b histograms averaged over the three channels, of L alone, of a and b."""
    sa, sb = mask_a > 0.01, mask_b > 0.01
    a, b = lab_a[sa].astype(np.float64), lab_b[sb].astype(np.float64)
    wa, wb = mask_a[sa].astype(np.float64), mask_b[sb].astype(np.float64)
    mean_a = (a * wa[:, None]).sum(0) / wa.sum()
    mean_b = (b * wb[:, None]).sum(0) / wb.sum()
    de = float(np.linalg.norm(mean_a - mean_b))
    w1 = [float(np.abs(quantiles(a[:, c], wa) - quantiles(b[:, c], wb)).mean()) for c in range(3)]
    return de, float(np.mean(w1)), w1[0], float(np.mean(w1[1:]))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma in [0, 1]."""
    return (rgb.astype(np.float64) / 255.0) @ np.array([0.299, 0.587, 0.114])


def figure(path: Path) -> None:
    """The sample portrait's face, bare and with each of ``FIGURE_LOOKS``, side by side."""
    photo = load(SAMPLE)
    x0, y0, x1, y1 = main_face(photo, "image").bbox
    side = 1.5 * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    box = tuple(round(v) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
    panels = [photo] + [makeup(photo, look=name) for name in FIGURE_LOOKS]
    tiles = [Image.fromarray(p).crop(box).resize((240, 240), Image.LANCZOS) for p in panels]
    sheet = Image.new("RGB", (240 * len(tiles), 240))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, (240 * i, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=85, optimize=True)
    print(f"{path}: bare, then {', '.join(FIGURE_LOOKS)} ({path.stat().st_size // 1024} KB)")


def score(
    engine: str, weights: Path | None, data: Path, out_dir: Path, triples: list[tuple]
) -> tuple[int, int]:
    """Print the figures of one engine and write its grid; returns (targets missed, of them
    near the JND)."""
    sources = sorted(data.glob("plain_*"))
    references = sorted(data.glob("makeup_ref_*"))
    refs = [(p, load(p)) for p in references]
    ref_info = [(rgb_to_lab(img.astype(np.float32) / 255), region_masks(img)) for _, img in refs]
    ref_objs = [Reference.of(img) for _, img in refs]
    options = {"engine": engine, "weights": weights if engine == "psgan" else None}
    keep_skin = [r for r in REGION_NAMES if r != "skin"]

    rows: list[dict] = []
    grid_rows = [[np.full_like(refs[0][1], 255)] + [img for _, img in refs]]
    times, skin_de, self_psnr = [], [], []
    for src_path in sources:
        src = load(src_path)
        src_lab = rgb_to_lab(src.astype(np.float32) / 255)
        masks = region_masks(src)
        outside = masks["oval"] == 0
        skin = masks["skin"] > 0.01
        grid = [src]
        for (ref_path, _), (ref_lab, ref_masks), ref in zip(refs, ref_info, ref_objs, strict=False):
            t = time.perf_counter()
            out = makeup(src, reference=ref, **options)
            times.append(time.perf_counter() - t)
            grid.append(out)
            out_lab = rgb_to_lab(out.astype(np.float32) / 255)
            row = {"source": src_path.stem, "reference": ref_path.stem}
            for region in REGION_NAMES:
                before = distances(src_lab, masks[region], ref_lab, ref_masks[region])
                after = distances(out_lab, masks[region], ref_lab, ref_masks[region])
                row[region] = (before, after)
            row["psnr"] = psnr(src[outside], out[outside])
            ssim_map = structural_similarity(
                luminance(src), luminance(out), data_range=1.0, gaussian_weights=True,
                sigma=1.5, use_sample_covariance=False, full=True,
            )[1]  # fmt: skip
            oval = masks["oval"]
            row["ssim"] = float((ssim_map * oval).sum() / oval.sum())
            rows.append(row)
            kept = makeup(src, reference=ref, regions=keep_skin, **options)
            de = deltaE_ciede2000(src_lab[skin], rgb_to_lab(kept.astype(np.float32) / 255)[skin])
            skin_de.append(float((de * masks["skin"][skin]).sum() / masks["skin"][skin].sum()))
        same = makeup(src, reference=src, **options)
        self_psnr.append(psnr(src[~outside], same[~outside]))
        grid_rows.append(grid)

    def red(before: float, after: float) -> float:
        return 1.0 - after / before if before > 0 else 1.0

    print(f"engine {engine}" + (f" ({weights})" if options["weights"] else ""))
    header = (
        f"{'source':<22}{'reference':<24}"
        + "".join(f"{r + ' dE':>16}{r + ' W1':>16}" for r in REGION_NAMES)
        + f"{'PSNR out':>10}{'SSIM':>7}{'skin dE00':>10}"
    )
    print(header)
    fails = near = 0
    worst = {r: [1.0] * 4 for r in REGION_NAMES}
    for row, kept_de in zip(rows, skin_de, strict=True):
        cells = []
        for region in REGION_NAMES:
            before, after = row[region]
            reds = [red(b, a) for b, a in zip(before, after, strict=True)]
            worst[region] = [min(w, r) for w, r in zip(worst[region], reds, strict=True)]
            (de0, w0, *_), (de1, w1, *_) = before, after
            rd, rw = reds[:2]
            missed = (rd < TARGET_REDUCTION) + (rw < TARGET_REDUCTION)
            fails += missed
            near += missed if max(de0, w0) < JND else 0
            cells.append(f"{de0:5.1f}>{de1:4.1f} {100 * rd:3.0f}%")
            cells.append(f"{w0:5.1f}>{w1:4.1f} {100 * rw:3.0f}%")
        fails += (row["psnr"] < TARGET_PSNR) + (row["ssim"] < TARGET_SSIM)
        fails += kept_de > TARGET_SKIN_DE
        print(
            f"{row['source']:<22}{row['reference']:<24}"
            + "".join(f"{c:>16}" for c in cells)
            + f"{row['psnr']:>10.1f}{row['ssim']:>7.3f}{kept_de:>10.2f}"
        )
    fails += sum(p < TARGET_SELF_PSNR for p in self_psnr)
    print()
    print("worst reduction per region: mean dE, histogram W1 (target >= 60%); W1 of L and of a,b")
    for region, (rd, rw, rl, rc) in worst.items():
        print(
            f"  {region:<6} dE {100 * rd:5.1f}%   W1 {100 * rw:5.1f}%"
            f"   (W1 L {100 * rl:5.1f}%, W1 ab {100 * rc:5.1f}%)"
        )
    print(f"worst PSNR outside the face: {min(r['psnr'] for r in rows):.1f} dB (target >= 40)")
    print(f"worst SSIM of face luminance: {min(r['ssim'] for r in rows):.3f} (target >= 0.9)")
    print(f"skin not among the regions: source skin CIEDE2000 mean {np.mean(skin_de):.2f}, "
          f"worst pair {max(skin_de):.2f} (target <= {TARGET_SKIN_DE})")  # fmt: skip
    print(f"self-transfer G(x, x): PSNR to x in the face oval, worst {min(self_psnr):.1f} dB, "
          f"median {np.median(self_psnr):.1f} dB (target >= {TARGET_SELF_PSNR})")  # fmt: skip
    if triples:
        made, bare = [], []
        for source, reference, target in triples:
            found = find_faces(source, "image")
            made.append(psnr(makeup(source, reference=reference, faces=found, **options), target))
            bare.append(psnr(source, target))
        print(f"held-out synthetic triples ({len(triples)}): PSNR to the target mean "
              f"{np.mean(made):.2f} dB, worst {min(made):.2f} dB (the source itself: "
              f"{np.mean(bare):.2f} dB)")  # fmt: skip
    print(f"median time per transfer (361x361, reference detected once): "
          f"{1000 * float(np.median(times)):.0f} ms")  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    grid = np.concatenate([np.concatenate(r, axis=1) for r in grid_rows], axis=0)
    path = out_dir / ("makeup_grid.jpg" if engine == "classic" else f"makeup_grid_{engine}.jpg")
    Image.fromarray(grid).save(path, quality=90)
    print(f"grid (sources down, references across): {path}")
    return fails, near


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--engines", default="classic", help="comma-separated makeup engines")
    ap.add_argument("--weights", type=Path, help="ONNX model of the psgan engine")
    ap.add_argument("--pack", type=Path, default=REPO / "runs" / "data" / "psgan_pack.npz",
                    help="PSGAN face pack for the held-out synthetic triples")
    ap.add_argument("--triples", type=int, default=8, help="held-out triples scored (0: none)")
    ap.add_argument("--figure", type=Path, help="write the README picture here and stop")
    args = ap.parse_args()
    if args.figure:
        figure(args.figure)
        return 0
    if not args.data.is_dir():
        print(f"no data at {args.data} (../shared/data or $MEIYAN_DATA)", file=sys.stderr)
        return 2
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if "psgan" in engines and args.weights is None:
        print("the psgan engine needs --weights MODEL.onnx (no model ships)", file=sys.stderr)
        return 2
    triples = []
    if args.triples and args.pack.is_file():
        triples = held_out_triples(args.pack, args.triples)
    elif args.triples:
        print(f"no pack at {args.pack} (meiyan train psgan-pack): synthetic triples not scored")
    fails = near = 0
    for engine in engines:
        missed, close = score(engine, args.weights, args.data, args.out, triples)
        fails, near = fails + missed, near + close
        print()
    if fails:
        print(
            f"{fails} target(s) missed; {near} of them where the source was already within "
            f"{JND} of the reference in both dE and W1 (about one just-noticeable difference)"
        )
    else:
        print("all targets met")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())

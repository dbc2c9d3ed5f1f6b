"""Scale sweep: are the segmenters right with their defaults from 3 to 30 px radius?

Run ``python -m evals.toolbench.scale``. For generated images of bright discs (2D, radius 3 to
30 px, separated by at least 3 px) and spheres (3D, anisotropic voxels: z step 4 times the
lateral pixel, radius 4 to 14 lateral pixels) with known labels, every segmenter is called
with the image (and its pixel size) only. Reported per size: the count error, F1 at IoU 0.5
against the true labels (``stardist.matching``), and the radius estimated by
:func:`tools.scale.estimate_object_scale` against the true one, next to the equivalent radius
of a smoothed Otsu mask's components (the alternative the estimator was chosen over). A second
table compares, on the blob-count benchmark's images, ``segment_objects`` (method picked from
the image) with fixed tools called with their defaults (what a plan following documented rules
alone would call). Prints tables and writes ``results/toolbench/scale.json``.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from tqdm import tqdm

from evals.toolbench.results import machine, save_json
from tools.scale import estimate_object_scale
from tools.types import PixelSize

OUT = Path("results/toolbench/scale.json")
RADII_2D = (3, 4, 6, 8, 12, 16, 20, 25, 30)
RADII_3D = (4, 6, 10, 14)
SPACING_3D = (2.0, 0.5, 0.5)  # z step 4x the lateral pixel, as on a widefield/confocal stack


def discs_2d(radius: float, *, seed: int = 0, noise: float = 0.05):
    """Separated bright discs of radius ``radius`` +- 10 % with their labels (tools.synthetic)."""
    from tools.synthetic import blobs

    side = int(max(256, 16 * radius))
    n = int(min(60, 0.22 * side * side / (math.pi * (1.1 * radius + 2.0) ** 2)))
    b = blobs(n, shape=(side, side), radius=(0.9 * radius, 1.1 * radius), noise=noise,
              seed=seed)
    return b.image, b.labels


def spheres_3d(radius: float, *, seed: int = 0, spacing: tuple[float, float, float] = SPACING_3D,
               noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Separated bright spheres (radius in lateral pixels, +- 10 %) on an anisotropic grid.

    Spheres are round in physical space; sampled with a z step ``spacing[0] / spacing[2]``
    times the lateral pixel, each is ``radius * spacing[2] / spacing[0]`` planes high.
    """
    rng = np.random.default_rng(seed)
    ratio = spacing[2] / spacing[0]
    side = int(max(64, 12 * radius))
    depth = int(max(16, math.ceil(side * ratio)))
    shape = (depth, side, side)
    physical = np.asarray(shape, float) * np.asarray(spacing) / spacing[2]  # in lateral px
    labels = np.zeros(shape, np.int32)
    centres: list[np.ndarray] = []
    radii: list[float] = []
    target = int(min(40, 0.15 * np.prod(physical) / (4 / 3 * math.pi * (1.1 * radius) ** 3)))
    zz, yy, xx = np.meshgrid(*(np.arange(n) * s / spacing[2] for n, s in zip(shape, spacing,
                                                                             strict=True)),
                             indexing="ij")
    for _ in range(4000):
        if len(centres) >= target:
            break
        r = rng.uniform(0.9, 1.1) * radius
        c = rng.uniform(r + 1, physical - r - 1)
        if any(np.linalg.norm(c - o) < r + ro + 3 for o, ro in zip(centres, radii,
                                                                    strict=True)):
            continue
        inside = (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r * r
        if not inside.any():
            continue
        centres.append(c)
        radii.append(r)
        labels[inside] = len(centres)
    amplitude = np.concatenate([[0.0], rng.uniform(0.6, 1.0, len(centres))]).astype(np.float32)
    image = ndi.gaussian_filter(amplitude[labels], (1.0 * ratio, 1.0, 1.0)) + np.float32(0.05)
    image += rng.normal(0, noise, shape).astype(np.float32)
    return image.astype(np.float32), labels


def _otsu_component_radius(image: np.ndarray) -> float:
    """The alternative estimator: median equivalent radius of a smoothed Otsu mask's regions."""
    from skimage.filters import threshold_otsu

    smooth = ndi.gaussian_filter(image, 1.0)
    regions, n = ndi.label(smooth > threshold_otsu(smooth))
    if n == 0:
        return float("nan")
    areas = np.bincount(regions.ravel())[1:]
    return float(np.sqrt(np.median(areas) / math.pi)) if image.ndim == 2 else float(
        np.cbrt(np.median(areas) * 3 / (4 * math.pi)))


def _segmenters(three_d: bool) -> dict[str, Callable[..., np.ndarray]]:
    from tools.segment import (
        seeded_watershed,
        segment_objects,
        threshold_labeling,
        voronoi_otsu_labeling,
    )

    table: dict[str, Callable[..., np.ndarray]] = {
        "segment_objects": lambda im, px: segment_objects(im, pixel_size=px),
        "voronoi_otsu_labeling": lambda im, px: voronoi_otsu_labeling(im, pixel_size=px),
        "threshold_labeling": lambda im, px: threshold_labeling(im, pixel_size=px),
        "seeded_watershed": lambda im, px: seeded_watershed(im, pixel_size=px),
    }
    if not three_d:
        from tools.stardist_segment import stardist_segment

        table["stardist_segment"] = lambda im, px: stardist_segment(im)
    return table


def sweep(radii: tuple[int, ...], *, three_d: bool, seeds: int) -> list[dict[str, Any]]:
    """One row per (radius, segmenter): count error, F1 and the radius estimates."""
    from stardist.matching import matching

    px = PixelSize(SPACING_3D, "µm") if three_d else None
    rows = []
    for radius in tqdm(radii, desc="3D radii" if three_d else "2D radii"):
        for seed in range(seeds):
            image, truth = (spheres_3d(radius, seed=seed) if three_d
                            else discs_2d(radius, seed=seed))
            n_true = int(truth.max())
            scale = estimate_object_scale(image, pixel_size=px)
            alternative = _otsu_component_radius(image)
            for name, segment in _segmenters(three_d).items():
                start = time.perf_counter()
                labels = segment(image, px)
                seconds = time.perf_counter() - start
                n_found = len(np.unique(labels[labels > 0]))
                rows.append({
                    "dims": 3 if three_d else 2, "radius": radius, "seed": seed,
                    "segmenter": name, "true": n_true, "found": n_found,
                    "count_error": (n_found - n_true) / max(n_true, 1),
                    "f1": float(matching(truth, labels, thresh=0.5).f1),
                    "radius_estimated": scale["radius"], "estimate_sure": scale["sure"],
                    "radius_otsu_components": alternative, "seconds": seconds,
                })
    return rows


def blob_benchmark_rules() -> list[dict[str, Any]]:
    """segment_objects against fixed tools with defaults on the blob-count benchmark images."""
    from evals.blob_bench import load_set
    from tools.segment import (
        seeded_watershed,
        segment_objects,
        threshold_labeling,
        voronoi_otsu_labeling,
    )

    counters = {
        "segment_objects (method from the image)": segment_objects,
        "rules only: voronoi_otsu_labeling": voronoi_otsu_labeling,
        "rules only: threshold_labeling": threshold_labeling,
        "rules only: seeded_watershed": seeded_watershed,
    }
    rows = []
    for name, counter in counters.items():
        errors: dict[str, list[int]] = {}
        for set_name in ("synthetic", "coins", "nuclei"):
            for item in load_set(set_name).values():
                labels = counter(item.image)
                found = len(np.unique(labels[labels > 0]))
                errors.setdefault(set_name, []).append(found - item.count)
        synthetic = np.asarray(errors["synthetic"])
        rows.append({
            "counter": name,
            "synthetic_exact": float(np.mean(synthetic == 0)),
            "synthetic_within_1": float(np.mean(np.abs(synthetic) <= 1)),
            "coins_error": int(errors["coins"][0]),
            "nuclei_error": int(errors["nuclei"][0]),
        })
    return rows


def _summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    keys = sorted({(r["dims"], r["radius"], r["segmenter"]) for r in rows})
    for dims, radius, name in keys:
        sel = [r for r in rows if (r["dims"], r["radius"], r["segmenter"]) == (dims, radius,
                                                                                 name)]
        out.append({
            "dims": dims, "radius": radius, "segmenter": name,
            "count_error": float(np.mean([abs(r["count_error"]) for r in sel])),
            "f1": float(np.mean([r["f1"] for r in sel])),
            "radius_estimated": float(np.mean([r["radius_estimated"] for r in sel])),
            "radius_otsu_components": float(np.mean([r["radius_otsu_components"]
                                                     for r in sel])),
            "seconds": float(np.mean([r["seconds"] for r in sel])),
        })
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=1, help="images per size")
    parser.add_argument("--no-3d", action="store_true", help="skip the 3D sweep")
    parser.add_argument("--no-blobs", action="store_true", help="skip the blob-benchmark table")
    args = parser.parse_args(argv)
    rows = sweep(RADII_2D, three_d=False, seeds=args.seeds)
    if not args.no_3d:
        rows += sweep(RADII_3D, three_d=True, seeds=args.seeds)
    summary = _summarise(rows)
    print(f"\n{'dims':>4s} {'radius':>6s} {'segmenter':24s} {'|count err|':>11s} {'F1':>6s} "
          f"{'r est.':>7s} {'r Otsu':>7s} {'s':>6s}")
    for r in summary:
        print(f"{r['dims']:4d} {r['radius']:6d} {r['segmenter']:24s} "
              f"{100 * r['count_error']:10.1f}% {r['f1']:6.3f} {r['radius_estimated']:7.2f} "
              f"{r['radius_otsu_components']:7.2f} {r['seconds']:6.2f}")
    worst = {}
    for r in summary:
        w = worst.setdefault(r["segmenter"], {"count_error": 0.0, "f1": 1.0})
        w["count_error"] = max(w["count_error"], r["count_error"])
        w["f1"] = min(w["f1"], r["f1"])
    print("\nworst over sizes: " + "; ".join(
        f"{k}: |count err| {100 * v['count_error']:.1f} %, F1 {v['f1']:.3f}"
        for k, v in worst.items()))
    rules = [] if args.no_blobs else blob_benchmark_rules()
    if rules:
        print(f"\n{'blob-count benchmark counter':42s} {'exact':>6s} {'±1':>6s} "
              f"{'coins':>6s} {'nuclei':>7s}")
        for r in rules:
            print(f"{r['counter']:42s} {r['synthetic_exact']:6.3f} "
                  f"{r['synthetic_within_1']:6.3f} {r['coins_error']:+6d} "
                  f"{r['nuclei_error']:+7d}")
    host = machine()
    print(f"machine: {host}")
    save_json(OUT, {"rows": rows, "summary": summary, "worst": worst, "blob_rules": rules,
                    "machine": host})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

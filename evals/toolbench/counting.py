"""Counting on held-out generated images: the data ``segment_objects``' defaults were set on.

Run ``python -m evals.toolbench.counting [--split design|heldout]``. The blob-count benchmark
(``evals/blob_bench.py``) is measured once at the end; the counting rules of
:func:`tools.segment.segment_objects` are chosen on these images instead, which differ from the
benchmark's in seeds and in every generator parameter:

* ``blobs``: :func:`tools.synthetic.blobs` with radius ranges 2.5-5, 3-7, 4-9 and 6-10 px, noise
  0.03-0.2, 3-90 blobs, with and without overlap, seeds from 1000 (design) or 5000 (held out).
* ``pairs``: every disc overlaps a neighbour, centres at 0.5-0.7, 0.7-0.85 or 0.85-1.0 of the
  summed radii (the generator's own overlap draws 0.6-0.95), amplitudes 0.5-1.0, radius 4-10 px.
* ``dim``: the blobs' geometry with amplitudes log-uniform over a 6-10x range (dim objects well
  below Otsu's threshold), a gentle background ramp and noise.
* ``nuclei``: :func:`tools.synthetic.nuclei_2d` with a brightness range of 4-8 (textured,
  elongated, touching nuclei on an uneven background); scored by relative count error.
* ``movie``: frames 0, 7, 14 and 19 of :func:`tools.synthetic.timelapse` movies (nuclei that
  move, touch and divide; a splitter that cuts one nucleus in two breaks its track).
* ``irregular``: :func:`skimage.data.binary_blobs` shapes (lobed, elongated, joined), each
  connected shape one object of its own brightness; a splitter must leave them whole.
* ``denoised``: noisy blobs (noise 0.12-0.25) after each of bia's denoisers with its defaults
  (wavelet, non-local means, bilateral, total variation), as a "denoise, then count" plan
  makes them: the noise left is smooth blotches, not pixel noise.

Prints a table per set (exact, within +-1, mean relative error) and writes
``results/toolbench/counting.json``.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from tqdm import tqdm

from evals.toolbench.results import machine, save_json

OUT = Path("results/toolbench/counting.json")
SEEDS = {"design": 1000, "heldout": 5000}


def _discs(shape: tuple[int, int], centers: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Labels of discs; a pixel in several discs goes to the one whose edge is farthest."""
    yy, xx = np.indices(shape, dtype=np.float32)
    best = np.full(shape, -np.inf, np.float32)
    labels = np.zeros(shape, np.int32)
    for k, ((cy, cx), r) in enumerate(zip(centers, radii, strict=True), start=1):
        depth = r - np.hypot(yy - cy, xx - cx)
        take = (depth >= 0) & (depth > best)
        labels[take] = k
        best[take] = depth[take]
    return labels


def overlapping_pairs(n_pairs: int, ratio: tuple[float, float], *, seed: int,
                      shape: tuple[int, int] = (256, 256), radius: tuple[float, float] = (4, 10),
                      noise: float = 0.05) -> tuple[np.ndarray, int]:
    """Pairs of overlapping discs (centre distance ``ratio`` x summed radii), pairs apart."""
    rng = np.random.default_rng(seed)
    centers: list[np.ndarray] = []
    radii: list[float] = []
    size = np.asarray(shape, float)
    for _ in range(4000):
        if len(centers) >= 2 * n_pairs:
            break
        r1, r2 = rng.uniform(*radius, 2)
        d = rng.uniform(*ratio) * (r1 + r2)
        t = rng.uniform(0, 2 * np.pi)
        c1 = rng.uniform(r1 + d + r2 + 2, size - r1 - d - r2 - 2)
        c2 = c1 + d * np.array([np.sin(t), np.cos(t)])
        if any(min(np.linalg.norm(c1 - o), np.linalg.norm(c2 - o)) < r1 + r2 + ro + 4
               for o, ro in zip(centers, radii, strict=True)):
            continue
        centers += [c1, c2]
        radii += [r1, r2]
    labels = _discs(shape, np.asarray(centers), np.asarray(radii))
    amp = np.concatenate([[0.0], rng.uniform(0.5, 1.0, len(radii))]).astype(np.float32)
    image = ndi.gaussian_filter(amp[labels], 1.0) + 0.05
    image += rng.normal(0, noise, shape).astype(np.float32)
    return image.astype(np.float32), int(np.unique(labels[labels > 0]).size)


def dim_blobs(n: int, *, seed: int, spread: float, overlap: bool,
              radius: tuple[float, float] = (4.0, 9.0), noise: float = 0.02,
              ramp: float = 0.03) -> tuple[np.ndarray, int]:
    """The geometry of :func:`tools.synthetic.blobs`, amplitudes log-uniform over ``spread``x."""
    from tools.synthetic import blobs

    b = blobs(n, radius=radius, overlap=overlap, noise=0.0, seed=seed)
    rng = np.random.default_rng(seed + 7)
    amp = np.concatenate([[0.0], np.exp(rng.uniform(np.log(1.0 / spread), 0.0, n))])
    image = ndi.gaussian_filter(amp.astype(np.float32)[b.labels], 1.0) + 0.05
    yy, xx = np.indices(image.shape) / image.shape[0]
    t = rng.uniform(0, 2 * np.pi)
    image = image + ramp * (np.cos(t) * yy + np.sin(t) * xx)
    image += rng.normal(0, noise, image.shape)
    return image.astype(np.float32), n


def irregular_blobs(*, seed: int, size_fraction: float, volume: float, noise: float = 0.05,
                    min_area: int = 30) -> tuple[np.ndarray, int]:
    """Irregular shapes of :func:`skimage.data.binary_blobs`; each connected one is an object."""
    from skimage.data import binary_blobs

    rng = np.random.default_rng(seed)
    shapes = binary_blobs(256, blob_size_fraction=size_fraction, volume_fraction=volume,
                          rng=seed)
    labels, n = ndi.label(shapes, structure=np.ones((3, 3)))
    small = np.bincount(labels.ravel(), minlength=n + 1) < min_area  # specks are not drawn
    small[0] = True
    amp = np.where(small, 0.0, rng.uniform(0.6, 1.0, n + 1)).astype(np.float32)
    image = ndi.gaussian_filter(amp[labels], 1.0) + 0.05
    image += rng.normal(0, noise, image.shape)
    return image.astype(np.float32), int((~small).sum())


def blob_settings(split: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(name, keyword arguments of tools.synthetic.blobs)`` for the ``blobs`` set of a split."""
    base = SEEDS[split]
    radii = ((2.5, 5.0), (3.0, 7.0), (4.0, 9.0), (6.0, 10.0))
    noises = (0.03, 0.1, 0.2)
    counts = (3, 8, 15, 25, 40, 60, 90)
    i = 0
    for overlap in (False, True):
        for r in radii:
            for k, n in enumerate(counts):
                mean_r = sum(r) / 2
                if n * math.pi * (mean_r + 1.5) ** 2 > 0.4 * 256 * 256:
                    continue
                noise = noises[(i + k) % 3]
                settings = {"n": n, "radius": r, "overlap": overlap, "noise": noise,
                            "seed": base + i}
                i += 1
                yield (f"n{n}_{'ov' if overlap else 'ap'}_r{r[0]:g}-{r[1]:g}_noise{noise:g}",
                       settings)


def cases(split: str) -> Iterator[tuple[str, str, Callable[[], tuple[np.ndarray, int]]]]:
    """``(set, name, make)`` for every image of a split; ``make()`` gives (image, true count)."""
    from tools.synthetic import blobs, nuclei_2d

    base = SEEDS[split]
    for name, settings in blob_settings(split):
        def make(settings=settings):
            b = blobs(**settings)
            return b.image, b.count
        yield ("blobs", name, make)
    for j, ratio in enumerate(((0.5, 0.7), (0.7, 0.85), (0.85, 1.0))):
        for m, n_pairs in enumerate((4, 10, 18)):
            seed = base + 100 + 3 * j + m

            def make(n_pairs=n_pairs, ratio=ratio, seed=seed):
                return overlapping_pairs(n_pairs, ratio, seed=seed)
            yield ("pairs", f"{n_pairs}pairs_{ratio[0]:g}-{ratio[1]:g}", make)
    for j, spread in enumerate((6.0, 10.0)):
        for m, (n, overlap) in enumerate(((12, False), (30, False), (50, True), (25, True))):
            seed = base + 200 + 4 * j + m

            def make(n=n, seed=seed, spread=spread, overlap=overlap):
                return dim_blobs(n, seed=seed, spread=spread, overlap=overlap)
            yield ("dim", f"n{n}_x{spread:g}_{'ov' if overlap else 'ap'}", make)
    for j, (brightness, radius, n) in enumerate(((4.0, (6, 12), 40), (6.0, (5, 10), 60),
                                                 (8.0, (7, 12), 50), (6.0, (8, 14), 30))):
        seed = base + 300 + j

        def make(brightness=brightness, radius=radius, n=n, seed=seed):
            nu = nuclei_2d((256, 256), n_nuclei=n, radius=radius, brightness_range=brightness,
                           seed=seed)
            return nu.image, int(np.unique(nu.labels[nu.labels > 0]).size)
        yield ("nuclei", f"n{n}_x{brightness:g}_r{radius[0]}-{radius[1]}", make)
    for j, (n_cells, noise) in enumerate(((10, 0.04), (14, 0.08), (8, 0.04))):
        for frame in (0, 7, 14, 19):
            seed = base + 400 + j

            def make(n_cells=n_cells, noise=noise, seed=seed, frame=frame):
                from tools.synthetic import timelapse

                movie = timelapse(n_cells=n_cells, noise=noise, seed=seed)
                truth = movie.labels[frame]
                return movie.movie[frame], int(np.unique(truth[truth > 0]).size)
            yield ("movie", f"cells{n_cells}_noise{noise:g}_t{frame}", make)
    for j, (fraction, volume) in enumerate(((0.04, 0.15), (0.06, 0.2), (0.08, 0.15),
                                            (0.1, 0.25))):
        seed = base + 500 + j

        def make(fraction=fraction, volume=volume, seed=seed):
            return irregular_blobs(seed=seed, size_fraction=fraction, volume=volume)
        yield ("irregular", f"size{fraction:g}_vol{volume:g}", make)
    for j, (n, noise, overlap) in enumerate(((6, 0.25, False), (20, 0.15, False),
                                             (45, 0.12, True))):
        for denoiser in ("wavelet", "nlm", "bilateral", "tv"):
            seed = base + 600 + j

            def make(n=n, noise=noise, overlap=overlap, seed=seed, denoiser=denoiser):
                from tools import denoise

                b = blobs(n, radius=(3.5, 8.0), overlap=overlap, noise=noise, seed=seed)
                return np.asarray(getattr(denoise, f"denoise_{denoiser}")(b.image)), b.count
            yield ("denoised", f"{denoiser}_n{n}_noise{noise:g}", make)


def run(split: str, *, method: str = "auto", quiet: bool = False) -> dict[str, Any]:
    """Count every image of ``split`` with ``segment_objects(image, method)``; per-set summaries."""
    from tools.segment import segment_objects

    rows = []
    items = list(cases(split))
    for set_name, name, make in tqdm(items, desc=f"counting ({split})", disable=quiet):
        image, truth = make()
        start = time.process_time()
        found = int(segment_objects(image, method=method).max())
        rows.append({"set": set_name, "image": name, "truth": truth, "found": found,
                     "cpu_s": round(time.process_time() - start, 3)})
    summary = {}
    for set_name in dict.fromkeys(r["set"] for r in rows):
        part = [r for r in rows if r["set"] == set_name]
        err = np.array([r["found"] - r["truth"] for r in part])
        rel = np.abs(err) / np.maximum([r["truth"] for r in part], 1)
        summary[set_name] = {"n": len(part), "exact": float(np.mean(err == 0)),
                             "within_1": float(np.mean(np.abs(err) <= 1)),
                             "mean_rel_error": float(rel.mean()), "bias": float(err.mean())}
    return {"split": split, "method": method, "machine": machine(), "summary": summary,
            "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=tuple(SEEDS), default="design")
    parser.add_argument("--method", default="auto", help="segment_objects' method")
    parser.add_argument("--misses", action="store_true", help="list the images miscounted")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    result = run(args.split, method=args.method)
    print(f"\n{result['machine']}; split {args.split}, method {args.method}")
    print(f"{'set':8} {'n':>3} {'exact':>6} {'+-1':>6} {'rel err':>8} {'bias':>6}")
    for name, s in result["summary"].items():
        print(f"{name:8} {s['n']:3d} {s['exact']:6.3f} {s['within_1']:6.3f} "
              f"{100 * s['mean_rel_error']:7.1f}% {s['bias']:+6.2f}")
    if args.misses:
        for r in result["rows"]:
            if r["found"] != r["truth"]:
                print(f"  {r['set']:7} {r['image']:28} truth {r['truth']:3d} found {r['found']:3d}")
    suffix = "" if args.method == "auto" else f"_{args.method}"
    out = args.out.with_name(f"{args.out.stem}_{args.split}{suffix}{args.out.suffix}")
    save_json(out, result)


if __name__ == "__main__":
    main()

"""Benchmark the segmentation tools: F1 at IoU 0.5 and time per method, and the speed target.

Run ``python -m evals.toolbench.segment``. For every method it reports F1 at IoU 0.5
(``stardist.matching``) on held-out synthetic nuclei (``tools.synthetic.nuclei_2d``) and on the
real nuclei image shipped with stardist (``tools.datasets.real_nuclei_2d``), and its time on a
2048x2048 synthetic image (4x4 tiles of independent 512x512 images, about 2000 nuclei). It then
times the default path, ``segment_objects`` + ``measure_objects`` at 2048x2048, against the 1.5 s
target. Prints a table and writes ``results/toolbench/segment.json``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from evals.toolbench.results import machine, save_json
from tools.datasets import real_nuclei_2d
from tools.measure import measure_objects
from tools.segment import (
    seeded_watershed,
    segment_objects,
    threshold_labeling,
    voronoi_otsu_labeling,
)
from tools.synthetic import nuclei_2d
from tools.types import PixelSize

OUT = Path("results/toolbench/segment.json")

METHODS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "segment_objects (defaults)": lambda im: segment_objects(im),
    "segment_objects nuclei=True (StarDist)": lambda im: segment_objects(im, nuclei=True),
    "voronoi_otsu (defaults: sigmas estimated)": lambda im: voronoi_otsu_labeling(im),
    "voronoi_otsu (old fixed defaults: spot 2, outline 2)": lambda im: voronoi_otsu_labeling(
        im, spot_sigma=2.0, outline_sigma=2.0),
    "voronoi_otsu spot_sigma=3": lambda im: voronoi_otsu_labeling(im, spot_sigma=3.0),
    "voronoi_otsu spot_sigma=4": lambda im: voronoi_otsu_labeling(im, spot_sigma=4.0),
    "threshold otsu": lambda im: threshold_labeling(im, method="otsu"),
    "threshold li": lambda im: threshold_labeling(im, method="li"),
    "threshold triangle": lambda im: threshold_labeling(im, method="triangle"),
    "threshold yen": lambda im: threshold_labeling(im, method="yen"),
    "seeded_watershed distance (defaults: sizes estimated)": lambda im: seeded_watershed(
        im, seeds="distance"),
    "seeded_watershed spots": lambda im: seeded_watershed(im, seeds="spots", spot_sigma=4.0),
}
CLESPERANTO = {
    "voronoi_otsu clEsperanto (PoCL CPU)": lambda im: voronoi_otsu_labeling(
        im, backend="clesperanto"
    ),
}


def tiled_nuclei(tiles: int = 4, tile: int = 512, per_tile: int = 125, seed: int = 1000):
    """A (tiles*tile)^2 synthetic nuclei image built from independent tiles, with labels."""
    image = np.zeros((tiles * tile,) * 2, np.float32)
    labels = np.zeros(image.shape, np.int32)
    offset = 0
    for i in range(tiles):
        for j in range(tiles):
            data = nuclei_2d((tile, tile), n_nuclei=per_tile, seed=seed + i * tiles + j)
            box = (slice(i * tile, (i + 1) * tile), slice(j * tile, (j + 1) * tile))
            image[box] = data.image
            labels[box] = np.where(data.labels > 0, data.labels + offset, 0)
            offset += data.n_objects
    return image, labels


def timed(func: Callable[[], object], repeats: int) -> tuple[object, float, float]:
    """Result, median wall time and median CPU time of ``repeats`` calls."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = func()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return result, float(np.median(walls)), float(np.median(cpus))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (median)")
    parser.add_argument("--no-clesperanto", action="store_true", help="skip the OpenCL backend")
    parser.add_argument("--synthetic", type=int, default=3, help="held-out synthetic images")
    args = parser.parse_args(argv)

    from stardist.matching import matching

    from tools.segment import clesperanto_problem

    methods = dict(METHODS)
    if not args.no_clesperanto:
        if problem := clesperanto_problem():
            print(f"clEsperanto rows left out: {problem}", flush=True)
        else:
            methods.update(CLESPERANTO)
    synthetic = [nuclei_2d((512, 512), n_nuclei=160, seed=900 + k) for k in range(args.synthetic)]
    real = real_nuclei_2d()
    print("building the 2048x2048 timing image ...", flush=True)
    big, big_truth = tiled_nuclei()
    rows = []
    for name, method in tqdm(methods.items(), desc="methods"):
        f1_syn = [float(matching(d.labels, method(d.image), thresh=0.5).f1) for d in synthetic]
        f1_real = float(matching(real.labels, method(real.image), thresh=0.5).f1)
        repeats = 1 if "clEsperanto" in name else args.repeats
        labels, wall, cpu = timed(lambda m=method: m(big), repeats)
        rows.append({
            "method": name,
            "f1_synthetic": float(np.mean(f1_syn)),
            "f1_real": f1_real,
            "f1_synthetic_2048": float(matching(big_truth, labels, thresh=0.5).f1),
            "seconds_2048": wall,
            "cpu_seconds_2048": cpu,
        })

    px = PixelSize((0.5, 0.5), "µm")

    def default_path():
        labels = segment_objects(big, pixel_size=px)
        return labels, measure_objects(labels, big, pixel_size=px)

    segment_objects(big)  # warm caches and imports
    (labels, table), wall, cpu = timed(default_path, max(args.repeats, 5))
    _, seg_wall, seg_cpu = timed(lambda: segment_objects(big, pixel_size=px), args.repeats)
    _, meas_wall, meas_cpu = timed(lambda: measure_objects(labels, big, pixel_size=px),
                                   args.repeats)
    speed = {
        "image": "2048x2048 synthetic nuclei (16 tiles of nuclei_2d 512x512, 125 nuclei each)",
        "objects_true": int(big_truth.max()),
        "objects_found": int(labels.max()),
        "columns": len(table.columns),
        "seconds": wall,
        "cpu_seconds": cpu,
        "segment_seconds": seg_wall,
        "segment_cpu_seconds": seg_cpu,
        "measure_seconds": meas_wall,
        "measure_cpu_seconds": meas_cpu,
        "target_seconds": 1.5,
        "target_met": wall < 1.5,
    }
    # clEsperanto ran on PoCL's CPU device: no GPU was used.
    host = machine()

    print(f"\n{'method':54s} {'F1 synth':>9s} {'F1 real':>8s} {'F1 2048':>8s} "
          f"{'s @2048':>8s} {'cpu s':>7s}")
    for r in rows:
        print(f"{r['method']:54s} {r['f1_synthetic']:9.3f} {r['f1_real']:8.3f} "
              f"{r['f1_synthetic_2048']:8.3f} {r['seconds_2048']:8.2f} "
              f"{r['cpu_seconds_2048']:7.2f}")
    print(f"\ndefault path (segment_objects + measure_objects, {speed['columns']} columns) "
          f"at 2048x2048: {wall:.2f} s wall ({cpu:.2f} s CPU); segment {seg_wall:.2f} s, "
          f"measure {meas_wall:.2f} s; target 1.5 s: {'met' if wall < 1.5 else 'NOT met'}")
    print(f"machine: {host}")
    save_json(OUT, {"methods": rows, "speed": speed, "machine": host})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

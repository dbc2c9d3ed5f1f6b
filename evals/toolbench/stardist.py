"""Benchmark of the bundled StarDist2D model against the classical Voronoi-Otsu baseline.

Accuracy is the F1 score (with precision and recall) of instance matching at IoU 0.5, computed
by :func:`stardist.matching.matching_dataset` over all objects of a set:

* ``real``: stardist's real nuclei image (``test_image_nuclei_2d``, 512x512, 125 labelled
  nuclei). It is never used for training or for choosing thresholds.
* ``synthetic_touching``: held-out :func:`tools.synthetic.nuclei_2d` images (seeds never used in
  training) with half of the nuclei in touching clumps.
* ``synthetic_varied``: held-out images drawn like the training images (random size, density,
  blur, noise, ...), with seeds outside the training and validation ranges.

Speed is the wall time of one call of each tool on a 1024x1024 synthetic image (median of
warm runs, normalisation and non-maximum suppression included).

Run ``python -m evals.toolbench.stardist``; the table is printed and the figures are written
to ``results/toolbench/stardist.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from evals.toolbench.results import machine, save_json

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS = Path("results/toolbench/stardist.json")


def _real_set() -> tuple[list[np.ndarray], list[np.ndarray]]:
    from stardist.data import test_image_nuclei_2d

    image, mask = test_image_nuclei_2d(return_mask=True)
    return [image], [mask]


def _touching_set(n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    from tools.synthetic import nuclei_2d
    from tools.train_stardist import TEST_SEED0

    pairs = [nuclei_2d(touching=0.5, seed=TEST_SEED0 + i) for i in range(n)]
    return [p.image for p in pairs], [p.labels for p in pairs]


def _varied_set(n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    from tools.train_stardist import TEST_SEED0, synthetic_pair

    pairs = [synthetic_pair(TEST_SEED0 + 500 + i) for i in range(n)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _score(
    method: Callable[[np.ndarray], np.ndarray], images: list[np.ndarray], truth: list[np.ndarray]
) -> dict[str, float]:
    from stardist.matching import matching_dataset

    preds = [method(im) for im in images]
    m = matching_dataset(truth, preds, thresh=0.5, show_progress=False)
    return {
        "f1": round(float(m.f1), 4),
        "precision": round(float(m.precision), 4),
        "recall": round(float(m.recall), 4),
        "n_true": int(m.n_true),
        "n_pred": int(m.n_pred),
    }


def _time(method: Callable[[np.ndarray], np.ndarray], image: np.ndarray, repeats: int) -> float:
    method(image)  # warm-up: model loading, graph tracing, kernel caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        method(image)
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 3)


def run(n_synthetic: int = 8, repeats: int = 3) -> dict:
    """Score and time both methods; return the results as a dict."""
    from tools.segment import voronoi_otsu_labeling
    from tools.stardist_segment import BUNDLED_MODEL_DIR, stardist_segment
    from tools.synthetic import nuclei_2d

    methods: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "stardist_segment (bundled)": lambda im: stardist_segment(im),
        "voronoi_otsu_labeling (defaults)": lambda im: voronoi_otsu_labeling(im),
    }
    sets = {
        "real": _real_set(),
        "synthetic_touching": _touching_set(n_synthetic),
        "synthetic_varied": _varied_set(n_synthetic),
    }
    big = nuclei_2d((1024, 1024), n_nuclei=640, touching=0.3, seed=4_000).image
    results: dict = {
        "machine": machine(),
        "model": str(BUNDLED_MODEL_DIR.name),
        "iou_threshold": 0.5,
        "sets": {name: len(imgs) for name, (imgs, _) in sets.items()},
        "methods": {},
    }
    for label, method in methods.items():
        row = {name: _score(method, imgs, gts) for name, (imgs, gts) in sets.items()}
        row["seconds_1024x1024"] = _time(method, big, repeats)
        results["methods"][label] = row
    return results


def print_table(results: dict) -> None:
    """Print the accuracy and time table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="StarDist vs Voronoi-Otsu: F1 at IoU 0.5 (precision / recall)")
    table.add_column("method")
    for name, n in results["sets"].items():
        table.add_column(f"{name} ({n} img)")
    table.add_column("s @ 1024²", justify="right")
    for method, row in results["methods"].items():
        cells = [
            f"{row[s]['f1']:.3f} ({row[s]['precision']:.2f} / {row[s]['recall']:.2f})"
            for s in results["sets"]
        ]
        table.add_row(method, *cells, f"{row['seconds_1024x1024']:.2f}")
    console = Console(width=140)
    console.print(table)
    console.print(results["machine"])


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description="StarDist benchmark: F1 and speed")
    parser.add_argument("--n-synthetic", type=int, default=8, help="images per synthetic set")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs at 1024x1024")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = run(args.n_synthetic, args.repeats)
    print_table(results)
    save_json(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

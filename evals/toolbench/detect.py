"""Benchmark spot detection: F1 at a distance cutoff, localisation error and time per method.

Run ``python -m evals.toolbench.detect``. Ground truth: the blob centres of
``tools.synthetic.blobs`` (60 blobs of radius 3-8 px in 256x256, five seeds). Detections and
true centres are paired one to one (Hungarian assignment) within 3 px. Prints a table and
writes ``results/toolbench/detect.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from evals.toolbench.results import machine, save_json
from tools.detect import detect_spots, match_points
from tools.synthetic import blobs

OUT = Path("results/toolbench/detect.json")
CUTOFF = 3.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="number of synthetic images")
    args = parser.parse_args(argv)
    images = [blobs(60, shape=(256, 256), radius=(3.0, 8.0), seed=s) for s in range(args.seeds)]
    configs = []
    for method in ("log", "dog", "local_max"):
        for sizes in ({"sigma": 3.0}, {"sigma": 2.0, "max_sigma": 6.0}):
            for subpixel in (True, False):
                configs.append({"method": method, **sizes, "subpixel": subpixel})
    rows = []
    for config in tqdm(configs, desc="configurations"):
        scores, seconds = [], []
        for data in images:
            start = time.perf_counter()
            spots = detect_spots(data.image, **config)
            seconds.append(time.perf_counter() - start)
            scores.append(match_points(spots[["y", "x"]].to_numpy(), data.centers, CUTOFF))
        rows.append({
            **config,
            "precision": float(np.mean([s["precision"] for s in scores])),
            "recall": float(np.mean([s["recall"] for s in scores])),
            "f1": float(np.mean([s["f1"] for s in scores])),
            "mean_error_px": float(np.nanmean([s["mean_distance"] for s in scores])),
            "seconds_256": float(np.median(seconds)),
        })
    print(f"\n{'method':10s} {'sizes':>10s} {'subpx':>6s} {'prec':>6s} {'recall':>6s} "
          f"{'F1':>6s} {'err px':>7s} {'s':>6s}")
    for r in rows:
        sizes = f"{r['sigma']:g}" + (f"-{r['max_sigma']:g}" if "max_sigma" in r else "")
        print(f"{r['method']:10s} {sizes:>10s} {r['subpixel']!s:>6s} {r['precision']:6.3f} "
              f"{r['recall']:6.3f} {r['f1']:6.3f} {r['mean_error_px']:7.3f} "
              f"{r['seconds_256']:6.3f}")
    host = machine()
    print(f"machine: {host}; F1 at a {CUTOFF:g} px cutoff, mean over {len(images)} images")
    save_json(OUT, {"cutoff_px": CUTOFF, "rows": rows, "machine": host})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

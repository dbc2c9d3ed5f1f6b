"""Tracking benchmark: LAP (laptrack) against greedy nearest-neighbour linking.

Synthetic movies (tools.synthetic.timelapse) at several densities, speeds and division rates
are tracked from their ground-truth masks (linking alone is scored), from masks with missed
detections (gap closing is needed), and from a real segmentation of the movie
(voronoi_otsu_labeling). Each result is scored with traccuracy: TRA and the counts behind
AOGM (false positive / negative edges, false positive / negative divisions).

Run ``python -m evals.toolbench.track`` (``--quick`` for one seed); prints a table and writes
``results/toolbench/track.json``.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")  # traccuracy's loaders print a bar per movie

from evals.toolbench.results import machine, save_json
from tools.segment import voronoi_otsu_labeling
from tools.synthetic import timelapse
from tools.track import score_tracking, track_objects


@dataclass(frozen=True)
class Scenario:
    """One kind of movie and how its masks are obtained."""

    name: str
    movie: dict[str, Any]
    masks: str = "gt"  # "gt", "missed" (3% of objects dropped) or "segmented"
    track: dict[str, Any] = field(default_factory=dict)


SCENARIOS = [
    Scenario("sparse", dict(shape=(128, 128), n_cells=10, speed=2.0, division_rate=0.02)),
    Scenario("moderate", dict(shape=(192, 192), n_cells=30, speed=3.0, division_rate=0.02)),
    Scenario("dense", dict(shape=(192, 192), n_cells=55, speed=3.0, division_rate=0.02)),
    Scenario("moderate, fast", dict(shape=(192, 192), n_cells=30, speed=6.0, division_rate=0.02),
             track=dict(max_distance=20.0)),
    Scenario("moderate, no divisions",
             dict(shape=(192, 192), n_cells=30, speed=3.0, division_rate=0.0)),
    Scenario("moderate, many divisions",
             dict(shape=(192, 192), n_cells=30, speed=3.0, division_rate=0.06)),
    Scenario("moderate, 3% missed",
             dict(shape=(192, 192), n_cells=30, speed=3.0, division_rate=0.02), masks="missed"),
    Scenario("moderate, segmented",
             dict(shape=(192, 192), n_cells=30, speed=3.0, division_rate=0.02),
             masks="segmented"),
]

METHODS = ("greedy", "lap")


def drop_objects(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Remove a random ``fraction`` of the objects (frame by frame), as missed detections."""
    rng = np.random.default_rng(seed)
    out = labels.copy()
    for t in range(1, labels.shape[0] - 1):  # keep first and last frames whole
        present = np.unique(labels[t])
        present = present[present > 0]
        gone = present[rng.random(present.size) < fraction]
        out[t][np.isin(labels[t], gone)] = 0
    return out


def masks_for(scenario: Scenario, movie: Any, seed: int) -> np.ndarray:
    """The label movie the trackers get."""
    if scenario.masks == "gt":
        return movie.labels
    if scenario.masks == "missed":
        return drop_objects(movie.labels, 0.03, seed)
    if scenario.masks == "segmented":
        return np.stack([voronoi_otsu_labeling(f, spot_sigma=2.0, outline_sigma=1.0)
                         for f in movie.movie])
    raise ValueError(scenario.masks)


def run(seeds: list[int], n_frames: int) -> list[dict[str, Any]]:
    """Score every method on every scenario and seed; one record per (scenario, method, seed)."""
    from rich.progress import track as progress

    jobs = [(s, seed) for s in SCENARIOS for seed in seeds]
    records = []
    for scenario, seed in progress(jobs, description="tracking"):
        movie = timelapse(n_frames, seed=seed, **scenario.movie)
        masks = masks_for(scenario, movie, seed)
        for method in METHODS:
            kwargs = {"max_distance": 15.0, "gap_closing_frames": 1, **scenario.track}
            start = time.perf_counter()
            tracks = track_objects(masks, method=method, **kwargs)
            seconds = time.perf_counter() - start
            score = score_tracking(masks, tracks, movie.labels, movie.tracks)
            records.append({
                "scenario": scenario.name, "masks": scenario.masks, "method": method,
                "seed": seed, "seconds": seconds, "n_tracks_gt": len(movie.tracks), **score,
            })
    return records


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean TRA and summed error counts per scenario and method."""
    rows = []
    for scenario in dict.fromkeys(r["scenario"] for r in records):
        for method in METHODS:
            group = [r for r in records if r["scenario"] == scenario and r["method"] == method]
            rows.append({
                "scenario": scenario, "linking": "LAP (laptrack)" if method == "lap"
                else "nearest-neighbour greedy", "method": method, "runs": len(group),
                "TRA": float(np.mean([r["TRA"] for r in group])),
                "TRA_min": float(np.min([r["TRA"] for r in group])),
                "LNK": float(np.mean([r["LNK"] for r in group])),
                **{k: int(sum(r[k] for r in group)) for k in (
                    "fp_edges", "fn_edges", "ws_edges", "fp_divisions", "fn_divisions",
                    "gt_divisions")},
                "seconds": float(np.mean([r["seconds"] for r in group])),
            })
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print the summary as a rich table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Tracking on synthetic movies (traccuracy 0.3.0, CTC matching)")
    for col in ("movie", "linking", "TRA", "LNK", "FP edges", "FN edges", "WS edges",
                "FP divs", "FN divs", "GT divs", "s/movie"):
        table.add_column(col, justify="left" if col in ("movie", "linking") else "right")
    for r in rows:
        table.add_row(
            r["scenario"], r["linking"], f"{r['TRA']:.4f}", f"{r['LNK']:.4f}",
            str(r["fp_edges"]), str(r["fn_edges"]), str(r["ws_edges"]),
            str(r["fp_divisions"]), str(r["fn_divisions"]), str(r["gt_divisions"]),
            f"{r['seconds']:.2f}",
        )
    Console(width=160).print(table)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="movies per scenario")
    parser.add_argument("--frames", type=int, default=30, help="frames per movie")
    parser.add_argument("--quick", action="store_true", help="one seed, 15 frames")
    parser.add_argument("--out", default="results/toolbench/track.json")
    args = parser.parse_args(argv)
    seeds = [0] if args.quick else list(range(args.seeds))
    frames = 15 if args.quick else args.frames
    start = time.perf_counter()
    records = run(seeds, frames)
    rows = summarize(records)
    print_table(rows)
    from importlib.metadata import version

    save_json(args.out, {
        "machine": machine(),
        "versions": {p: version(p) for p in ("laptrack", "traccuracy", "scikit-image")},
        "seeds": seeds, "frames": frames, "seconds_total": time.perf_counter() - start,
        "summary": rows, "runs": records,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

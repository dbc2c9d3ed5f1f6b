"""Batch throughput: the same analysis over a folder of images with 1 and 2 dask workers.

``python -m evals.toolbench.batch [--n-images 50] [--size 512] [--workers 1 2]``

Writes ``--n-images`` synthetic nuclei images (:func:`tools.synthetic.nuclei_2d`, seeded, with
ground truth) to a temporary folder, then runs :func:`agent.batch.run_batch` with the demo's
pipeline (denoise_nlm -> voronoi_otsu_labeling -> measure_objects) on a fresh ``LocalCluster``
for each worker count. Reports wall time with and without cluster start-up, images per second,
the speed-up over one worker, and the mean F1 at IoU 0.5 against the truth (the same for every
worker count, as a check that parallelism changes nothing). Prints a table and writes
``results/toolbench/batch.json``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from evals.toolbench.results import machine, save_json

PIPELINE = [
    {"tool": "denoise_nlm", "arguments": {"image": "input"}, "outputs": ["denoised"]},
    {"tool": "voronoi_otsu_labeling",
     "arguments": {"image": "denoised", "spot_sigma": 3.0, "outline_sigma": 1.0},
     "outputs": ["labels"]},
    {"tool": "measure_objects", "arguments": {"labels": "labels", "image": "input"},
     "outputs": ["table"]},
]
RESULTS = Path("results/toolbench/batch.json")


def make_images(folder: Path, n: int, size: int) -> dict[str, np.ndarray]:
    """Write ``n`` seeded synthetic images; return their truth label images by file name."""
    from tqdm import tqdm

    from tools.io import write_image
    from tools.synthetic import nuclei_2d

    truth = {}
    density = 120 / 512**2  # the bundled example's density
    for i in tqdm(range(n), desc="images", leave=False):
        data = nuclei_2d((size, size), n_nuclei=max(5, round(density * size * size)), seed=i)
        name = f"img{i:03d}.tif"
        write_image(folder / name, data.image, data.meta)
        truth[name] = data.labels
    return truth


def mean_f1(out: Path, truth: dict[str, np.ndarray]) -> float:
    """Mean F1 at IoU 0.5 of the batch's label images against the truth."""
    from stardist.matching import matching

    from agent.batch import read_manifest
    from tools.io import read_image

    scores = []
    for name, record in read_manifest(out).items():
        labels, _ = read_image(record["outputs"]["labels"])
        scores.append(matching(truth[name], labels.astype(np.int32), thresh=0.5).f1)
    return float(np.mean(scores))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and report it."""
    import tools
    from agent.batch import find_images, run_batch
    from agent.pipeline import Step, build_pipeline

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=50)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    registry = tools.load_all()
    pipeline = build_pipeline([Step(**s) for s in PIPELINE], registry, source="benchmark")
    where = Path(tempfile.mkdtemp(prefix="bia-batch-bench-"))
    host = machine()
    rows = []
    try:
        truth = make_images(where / "images", args.n_images, args.size)
        files = find_images(where / "images")
        for n_workers in args.workers:
            out = where / f"out-{n_workers}"
            report = run_batch(pipeline, files, out, n_workers=n_workers, progress=True)
            if report.failed:
                raise SystemExit(f"{len(report.failed)} files failed: {report.failed[:3]}")
            work = report.seconds - report.cluster_seconds
            rows.append({
                "workers": n_workers,
                "images": len(files),
                "wall_s": round(report.seconds, 2),
                "cluster_start_s": round(report.cluster_seconds, 2),
                "processing_s": round(work, 2),
                "images_per_s": round(len(files) / work, 3),
                "objects": len(report.table),
                "mean_f1_iou50": round(mean_f1(out, truth), 4),
            })
    finally:
        shutil.rmtree(where, ignore_errors=True)
    base = rows[0]["processing_s"]
    for row in rows:
        row["speedup"] = round(base / row["processing_s"], 2)

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"bia batch: {args.n_images} images {args.size}x{args.size}, "
                        "denoise_nlm -> voronoi_otsu_labeling -> measure_objects")
    for column in ("workers", "wall_s", "cluster_start_s", "processing_s", "images_per_s",
                   "speedup", "objects", "mean_f1_iou50"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(str(row[c]) for c in (
            "workers", "wall_s", "cluster_start_s", "processing_s", "images_per_s", "speedup",
            "objects", "mean_f1_iou50")))
    console = Console(width=140)
    console.print(table)
    console.print(f"machine: {host}")
    save_json(args.output, {"benchmark": "batch", "machine": host,
                            "date": time.strftime("%Y-%m-%d %H:%M"), "n_images": args.n_images,
                            "size": args.size, "pipeline": PIPELINE, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

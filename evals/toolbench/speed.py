"""Speed of the default path against earlier code, call by call (issue 14's speed protocol).

Run ``python -m evals.toolbench.speed [--rounds 30] [--against 9d942b2] [--also REV ...]``.
Each code version runs in persistent worker processes of its own (``--processes``, which
take the rounds in turn): the working tree as it is, and a temporary git worktree of every
other revision, whose modules come first on that worker's path. Each worker is warmed up
once; then the versions take one timed call each, in a new random order every round,
``--rounds`` times, so a machine whose speed drifts by 10-15 % over minutes slows every
version alike. A call is segment + measure of the 2048x2048 timing image
(``evals.toolbench.segment.tiled_nuclei``, made once here and handed to every worker), in
CPU seconds. The ``--against`` revision is called the way its default path was before issue
14 (``voronoi_otsu_labeling`` with its defaults, then ``measure_objects``); the working tree
and the ``--also`` revisions call ``segment_objects`` + ``measure_objects``.

Prints the least and median time of each version, its ratios to the first, and the median of
the per-round ratios; writes ``results/toolbench/speed.json``. Nothing else should run on the
machine meanwhile (a benchmark beside it skews the ratios).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from evals.toolbench.results import machine, save_json
from evals.toolbench.segment import tiled_nuclei

OUT = Path("results/toolbench/speed.json")
ROOT = Path(__file__).resolve().parents[2]

# Runs inside each worker, against that worker's own version of tools/: it cannot import this
# module, which older revisions lack.
WORKER = """
import sys, time
import numpy as np
from tools.measure import measure_objects
from tools.types import PixelSize

image = np.load(sys.argv[1])
pixel_size = PixelSize((0.5, 0.5), "µm")
if sys.argv[2] == "voronoi":
    from tools.segment import voronoi_otsu_labeling

    def segment():
        return voronoi_otsu_labeling(image)
else:
    from tools.segment import segment_objects

    def segment():
        return segment_objects(image, pixel_size=pixel_size)

def call():
    labels = segment()
    measure_objects(labels, image, pixel_size=pixel_size)
    return int(labels.max())

call()
print("ready", flush=True)
for _ in sys.stdin:
    start = time.process_time()
    objects = call()
    print(time.process_time() - start, objects, flush=True)
"""


class Worker:
    """One code version in a process of its own, answering one timed call per request."""

    def __init__(self, name: str, source: Path, call: str, image: Path) -> None:
        self.name, self.call = name, call
        env = dict(os.environ, PYTHONPATH=str(source))
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(image), call], cwd=source, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if self.process.stdout is None or self.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the worker for {name} did not start (is tools/ importable there?)")

    def time_one(self) -> tuple[float, int]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        seconds, objects = self.process.stdout.readline().split()
        return float(seconds), int(objects)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def _worktree(revision: str, parent: Path) -> Path:
    """A detached checkout of ``revision`` under ``parent``."""
    path = parent / revision.replace("/", "_")
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(path),
                    revision], check=True, capture_output=True)
    return path


def run(rounds: int, against: str, also: list[str], processes: int = 2) -> dict[str, Any]:
    """Time every version ``rounds`` times in turn; per-version summaries and raw times.

    Each version has ``processes`` workers, taking the rounds in turn: a process can be slower
    than another running the same code for its whole life (where its arrays landed in memory),
    by 5-10 % on the machine of 2026-12-04.
    """
    with tempfile.TemporaryDirectory(prefix="bia-speed-") as tmp:
        parent = Path(tmp)
        image_path = parent / "timing.npy"
        image, _ = tiled_nuclei()
        np.save(image_path, image)
        versions = [(against, _worktree(against, parent), "voronoi")]
        versions += [(rev, _worktree(rev, parent), "segment") for rev in also]
        versions.append(("working tree", ROOT, "segment"))
        workers: list[list[Worker]] = []
        try:
            for name, source, call in tqdm(versions, desc="starting workers"):
                workers.append([Worker(name, source, call, image_path) for _ in range(processes)])
            times: dict[str, list[float]] = {name: [] for name, _, _ in versions}
            objects: dict[str, int] = {}
            order = np.random.default_rng(0)
            for turn in tqdm(range(rounds), desc="rounds"):
                # A new order each round: a call may run slower right after another's.
                for version in order.permutation(len(workers)):
                    worker = workers[version][turn % processes]
                    seconds, objects[worker.name] = worker.time_one()
                    times[worker.name].append(seconds)
        finally:
            for worker in (w for group in workers for w in group):
                worker.close()
            for _, source, _ in versions:
                if source != ROOT:
                    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                    str(source)], capture_output=True)
    base = np.asarray(times[against])
    rows = []
    for name, _, call in versions:
        t = np.asarray(times[name])
        ratio = t / base
        rows.append({
            "version": name, "call": call, "objects": objects[name],
            "least_s": float(t.min()), "median_s": float(np.median(t)),
            "ratio_least": float(t.min() / base.min()),
            "ratio_median": float(np.median(t) / np.median(base)),
            "ratio_per_round_median": float(np.median(ratio)),
            "ratio_per_round_quartiles": [float(q) for q in np.percentile(ratio, [25, 75])],
            "seconds": [float(x) for x in t],
        })
    return {"rounds": rounds, "processes": processes, "against": against, "rows": rows,
            "machine": machine()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed calls per version")
    parser.add_argument("--processes", type=int, default=2, help="worker processes per version")
    parser.add_argument("--against", default="9d942b2",
                        help="revision before issue 14, called as voronoi-Otsu + measure")
    parser.add_argument("--also", nargs="*", default=[],
                        help="more revisions, called as segment_objects + measure")
    args = parser.parse_args(argv)
    result = run(args.rounds, args.against, args.also, args.processes)
    print(f"\n{'version':14s} {'call':8s} {'objects':>7s} {'least s':>8s} {'median s':>9s} "
          f"{'ratio least / median':>21s} {'per round (quartiles)':>24s}")
    for r in result["rows"]:
        q25, q75 = r["ratio_per_round_quartiles"]
        print(f"{r['version']:14s} {r['call']:8s} {r['objects']:7d} {r['least_s']:8.3f} "
              f"{r['median_s']:9.3f} {r['ratio_least']:10.2f} / {r['ratio_median']:.2f}  "
              f"{r['ratio_per_round_median']:10.2f} ({q25:.2f}-{q75:.2f})")
    print(f"machine: {result['machine']}")
    save_json(OUT, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

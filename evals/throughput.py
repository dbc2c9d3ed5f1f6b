"""Throughput of the code-correctness sandbox: 570 samples, the issue's target is < 5 minutes.

    python -m evals.throughput [--samples 570] [--workers 2] [--mode fork] [--out DIR]

The samples are the shipped tasks' canonical solutions (about 70 %) mixed with wrong ones that
fail in each way (assertion, invented API, import error, crash), so the run exercises passing
and failing paths alike. Prints a table and writes ``throughput.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

from evals import code_bench
from evals.humaneval import DEFAULT_PROBLEMS, read_problems, write_jsonl
from evals.report import markdown_table

WRONG = (
    "    return None\n",
    "    import numpy as np\n    return np.magic_segment(1)\n",
    "    import skimage_plus\n",
    "    assert False, 'wrong'\n",
    "    raise RuntimeError('boom')\n",
)


def make_samples(path: Path, n: int, seed: int = 0) -> Path:
    """``n`` samples cycling over the tasks, 70 % canonical, the rest wrong."""
    problems = list(read_problems(DEFAULT_PROBLEMS)[0].values())
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        problem = problems[i % len(problems)]
        completion = problem.canonical_solution if rng.random() < 0.7 else rng.choice(WRONG)
        rows.append({"task_id": problem.task_id, "completion": completion})
    write_jsonl(path, rows)
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the throughput benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=570)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mode", choices=("fork", "spawn"), default="fork")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="bia-throughput-"))
    out.mkdir(parents=True, exist_ok=True)
    samples = make_samples(out / "samples.jsonl", args.samples)
    results = out / "results"
    if (results / "results.jsonl").exists():
        (results / "results.jsonl").unlink()  # a throughput run must execute everything
    start = time.perf_counter()
    summary = code_bench.run_code_bench(results, samples_path=samples, workers=args.workers,
                                        mode=args.mode)
    total = time.perf_counter() - start
    figures = {
        "samples": summary["samples"], "workers": args.workers, "mode": args.mode,
        "cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
        "total_seconds": round(total, 1),
        "execution_seconds": summary["run"]["wall_seconds"],
        "samples_per_minute_total": round(60 * summary["samples"] / total, 1),
        "pass_rate": round(summary["pass_rate"], 3),
        "categories": summary["categories"],
        "target_met": total < 300,
    }
    (out / "throughput.json").write_text(json.dumps(figures, indent=2))
    print(markdown_table(list(figures)[:-2], [[figures[k] for k in list(figures)[:-2]]]))
    print(f"categories: {figures['categories']}; under 5 minutes: {figures['target_met']}")
    print(f"written to {out / 'throughput.json'}")
    return 0 if figures["target_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

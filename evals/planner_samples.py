"""Self-consistency for the planner: accuracy and seconds against the number of sampled plans.

A handful of requests written for this measurement (not benchmark items), on generated images
with known answers. Each is asked with ``samples=k`` for each k; a request is right when the
first answered number is within the tolerance of the truth. Prints a table and writes JSON::

    BIA_THREADS=1 python -m evals.planner_samples --model 1.5b --k 1 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tifffile

from tools.synthetic import blobs, nuclei_2d


def make_data(folder: Path) -> list[tuple[str, float, float]]:
    """Write the images; return (request, true value, tolerance) triples."""
    b = blobs(25, seed=11)
    tifffile.imwrite(folder / "dots.tif", (b.image * 200).clip(0, 255).astype(np.uint8))
    n = nuclei_2d((256, 256), n_nuclei=30, seed=5)
    tifffile.imwrite(folder / "dapi.tif", n.image)
    edge = blobs(20, seed=12, border=True)
    tifffile.imwrite(folder / "edge.tif", (edge.image * 200).clip(0, 255).astype(np.uint8))
    inside = int(20 - np.count_nonzero(edge.touches_border))
    return [
        ("dots.tif: how many dots?", 25, 2),
        ("Count the nuclei in dapi.tif please", n.n_objects, 0.15 * n.n_objects),
        ("How many blobs in edge.tif are not cut by the image border?", inside, 2),
        ("Smooth dots.tif a little, then count the spots in it", 25, 2),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the requests for each k and print accuracy and seconds."""
    parser = argparse.ArgumentParser(prog="python -m evals.planner_samples")
    parser.add_argument("--model", default="1.5b")
    parser.add_argument("--k", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from agent.backends import make_chat_model
    from agent.planner import Agent
    from agent.session import Session
    from tools.workspace import Workspace

    model, info = make_chat_model(args.model, progress=False)
    folder = Path(tempfile.mkdtemp())
    cases = make_data(folder)
    rows = []
    for k in args.k:
        right, seconds = 0, []
        for request, truth, tolerance in cases:
            ws = Workspace([folder], output_root=folder / "out")
            agent = Agent(model, session=Session(ws, model_info=info), model_info=info,
                          samples=k)
            start = time.perf_counter()
            reply = agent.ask(request)
            seconds.append(time.perf_counter() - start)
            ok = bool(reply.values) and isinstance(reply.values[0], int | float) and abs(
                float(reply.values[0]) - truth) <= tolerance
            right += ok
            print(f"k={k} {'ok ' if ok else 'BAD'} {seconds[-1]:5.1f} s  {request!r} -> "
                  f"{reply.values} (truth {truth})", flush=True)
        rows.append({"k": k, "right": right, "of": len(cases),
                     "median_s": float(np.median(seconds)), "seconds": seconds})
    load = os.getloadavg()[0]
    print(f"\nmodel {info.name}, threads {info.extra.get('n_threads')}, load {load:.1f}")
    print("k  right  median s")
    for row in rows:
        print(f"{row['k']:<2} {row['right']}/{row['of']}    {row['median_s']:.1f}")
    if args.json:
        args.json.write_text(json.dumps({"model": info.name, "load": load, "rows": rows},
                                        indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

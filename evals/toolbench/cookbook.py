"""Benchmark the worked-example retrieval: does a request find an example with the same plan?

Run ``python -m evals.toolbench.cookbook``. The cookbook's examples are shuffled and split into
five parts; each part in turn is held out (20 %) and its requests are searched against the
other four. A hit is a top-3 (and, separately, top-1) example whose plan calls the same tools
in the same order. The ceiling is the share of held-out examples whose tool sequence occurs at
all among the others (a unique plan cannot be found). Keyword (BM25), dense (static WordLlama
embeddings) and hybrid (both, reciprocal-rank fused) retrieval are compared over several
shuffles. Prints a table and writes ``results/toolbench/cookbook.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from evals.toolbench.results import machine, save_json
from rag_index.cookbook import load_examples
from rag_index.cookbook.retrieval import DEFAULT_MODE, same_tools_hit_rate

OUT = Path("results/toolbench/cookbook.json")
MODES = ("keyword", "dense", "hybrid")


def ceiling(examples: list, *, folds: int, seed: int) -> float:
    """Share of held-out examples whose tool sequence occurs among the other folds."""
    order = np.random.default_rng(seed).permutation(len(examples))
    found = 0
    for held in np.array_split(order, folds):
        held_set = set(held.tolist())
        rest = {ex.tools for i, ex in enumerate(examples) if i not in held_set}
        found += sum(examples[i].tools in rest for i in held)
    return found / len(examples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shuffles", type=int, default=5, help="seeds of the 5-fold split")
    parser.add_argument("--k", type=int, default=3, help="examples retrieved per request")
    args = parser.parse_args(argv)
    examples = list(load_examples())
    seeds = range(args.shuffles)
    rows = []
    for mode in tqdm(MODES, desc="retrievers"):
        runs = [same_tools_hit_rate(examples, mode=mode, k=args.k, seed=s) for s in seeds]
        rows.append({
            "mode": mode,
            f"top{args.k}": float(np.mean([r["hit_rate"] for r in runs])),
            "top1": float(np.mean([r["top1"] for r in runs])),
            "ms_per_query": float(np.median([r["ms_per_query"] for r in runs])),
            "by_theme": {t: float(np.mean([r["by_theme"][t] for r in runs]))
                         for t in runs[0]["by_theme"]},
        })
    top = float(np.mean([ceiling(examples, folds=5, seed=s) for s in seeds]))
    print(f"{len(examples)} examples, 5-fold hold-out (20 %), {args.shuffles} shuffles; "
          f"ceiling (same tools exist among the others) {top:.3f}")
    print(f"{'retriever':10s} {'top' + str(args.k):>6s} {'top1':>6s} {'ms/query':>9s}")
    for row in rows:
        mark = "  (default)" if row["mode"] == DEFAULT_MODE else ""
        print(f"{row['mode']:10s} {row[f'top{args.k}']:6.3f} {row['top1']:6.3f} "
              f"{row['ms_per_query']:9.2f}{mark}")
    default = next(row for row in rows if row["mode"] == DEFAULT_MODE)
    print(f"{DEFAULT_MODE} top{args.k} by theme: " + ", ".join(
        f"{t} {v:.2f}" for t, v in default["by_theme"].items()))
    line = machine()
    print(line)
    save_json(OUT, {
        "examples": len(examples),
        "folds": 5,
        "shuffles": args.shuffles,
        "k": args.k,
        "ceiling": top,
        "default": DEFAULT_MODE,
        "rows": rows,
        "machine": line,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``bia bench``: run a benchmark suite and write its results folder.

    bia bench code --canonical
    bia bench code --samples samples.jsonl --workers 2
    bia bench code --generate MODEL --base-url http://localhost:8000/v1 --n 10
    bia bench blobs --counters classical constant:24 vlm:MODEL --base-url URL --samples 3
    bia bench agent --backends oracle 0.5b 1.5b

Each run writes ``results.jsonl`` (one line per sample; a rerun skips what is there),
``summary.json``, ``report.md`` and PNG plots to ``--out`` (``results/<suite>`` by default),
and prints the report's main table.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tools.errors import BiaError


def _common(parser: argparse.ArgumentParser, suite: str, workers: int) -> None:
    parser.add_argument("--out", type=Path, default=Path("results") / suite,
                        help=f"results folder (default: results/{suite})")
    parser.add_argument("--workers", type=int, default=workers,
                        help=f"local worker processes (default: {workers})")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="Dask scheduler address (tcp://host:8786) to run the jobs on")


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands ``code``, ``blobs`` and ``agent`` of ``bia bench``."""
    sub = parser.add_subparsers(dest="suite", metavar="SUITE", required=True)
    cpus = max(1, min(os.cpu_count() or 1, 8))

    code = sub.add_parser("code", help="code correctness of model-written functions (pass@k)")
    code.add_argument("--problems", type=Path, help="HumanEval-format problems JSONL "
                      "(default: bia's bio-image-analysis tasks)")
    source = code.add_mutually_exclusive_group(required=True)
    source.add_argument("--samples", type=Path, help="samples JSONL (task_id, completion)")
    source.add_argument("--canonical", action="store_true",
                        help="score the canonical solutions (all must pass)")
    source.add_argument("--generate", metavar="MODEL",
                        help="generate samples with MODEL first (see --base-url)")
    code.add_argument("--n", type=int, default=1, help="samples per task with --generate")
    code.add_argument("--temperature", type=float, default=0.2)
    code.add_argument("--prompt-template", type=Path,
                      help="file with the generation prompt; {prompt} is the task's prompt")
    code.add_argument("--base-url", help="OpenAI-compatible server for --generate")
    code.add_argument("--timeout", type=float, default=10.0, help="seconds per sample")
    code.add_argument("--memory-mb", type=int, default=2048,
                      help="address space a sample may add, in MiB")
    code.add_argument("--data-dir", type=Path,
                      help="folder copied into each sample's working folder as data/")
    code.add_argument("--mode", choices=("fork", "spawn"),
                      help="fork a warm worker per sample (default) or start a fresh Python")
    code.add_argument("--ks", type=int, nargs="+", default=[1, 5, 10], help="k of pass@k")
    _common(code, "code", cpus)

    blobs = sub.add_parser("blobs", help="blob counting by vision models and baselines")
    blobs.add_argument("--counters", nargs="+", default=["classical", "constant:24"],
                       help="classical, constant:N, random:LOW:HIGH, vlm:MODEL, scripted:TEXT, "
                            "agent:BACKEND")
    blobs.add_argument("--sets", nargs="+", default=["synthetic", "coins", "nuclei"],
                       help="image sets: synthetic, coins, nuclei")
    blobs.add_argument("--variants", nargs="+", default=["classic", "ignore_border"],
                       help="prompt variants (classic, ignore_border, or ones given by --prompt)")
    blobs.add_argument("--prompt", action="append", default=[], metavar="NAME=TEXT",
                       help="an extra prompt variant")
    blobs.add_argument("--truth", action="append", default=[], metavar="NAME=all|inner",
                       help="which count an extra variant is scored against (default all)")
    blobs.add_argument("--samples", type=int, default=3, help="answers per image per model")
    blobs.add_argument("--temperature", type=float, default=0.7)
    blobs.add_argument("--base-url", help="OpenAI-compatible server for vlm: counters")
    _common(blobs, "blobs", cpus)

    agent = sub.add_parser("agent", help="agent tool choice, arguments and outcomes")
    agent.add_argument("--backends", nargs="+", default=["oracle"],
                       help="oracle (scripted reference) and/or agent backends: embedded, "
                            "0.5b, 1.5b, a .gguf path, or a server model with --base-url")
    agent.add_argument("--base-url", help="OpenAI-compatible server")
    agent.add_argument("--limit", type=int, help="only the first N requests")
    agent.add_argument("--subset", choices=["all", "v1", "v2", "analysis", "question", "bad"],
                       default="all", help="v1: the first version's 63 requests")
    agent.add_argument("--max-seconds", type=float,
                       help="start no new request after this many seconds (resumable)")
    agent.add_argument("--report-only", action="store_true",
                       help="run nothing; summarize the results there are")
    _common(agent, "agent", 1)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise BiaError(f"{what} must look like NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def bench_main(args: argparse.Namespace) -> int:
    """Run the chosen suite; 0 on success (and, with --canonical, when all pass)."""
    try:
        return _SUITES[args.suite](args)
    except BiaError as exc:
        print(f"bia bench {args.suite}: {exc}")
        return 2


def _code(args: argparse.Namespace) -> int:
    from evals import code_bench, sandbox
    from evals.humaneval import DEFAULT_PROBLEMS, read_problems
    from evals.models import load_model
    from evals.report import markdown_table

    problems_path = args.problems or DEFAULT_PROBLEMS
    samples_path = args.samples
    if args.generate:
        template = (args.prompt_template.read_text() if args.prompt_template
                    else code_bench.DEFAULT_PROMPT)
        problems, _ = read_problems(problems_path)
        samples_path = code_bench.generate_samples(
            problems, load_model(args.generate, args.base_url),
            args.out / "samples.jsonl", n=args.n, template=template,
            temperature=args.temperature)
    summary = code_bench.run_code_bench(
        args.out, problems_path=problems_path, samples_path=samples_path,
        canonical=args.canonical, workers=args.workers, scheduler=args.scheduler,
        limits=sandbox.Limits(timeout=args.timeout, memory_mb=args.memory_mb),
        data_dir=args.data_dir, mode=args.mode, ks=args.ks,
    )
    print(markdown_table(["k", "pass@k"], list(summary["pass_at_k"].items())))
    print(markdown_table(["category", "samples"], list(summary["categories"].items())))
    run = summary["run"]
    print(f"{summary['samples']} samples of {summary['tasks']} tasks; this run executed "
          f"{run['executed_now']} in {run['wall_seconds']} s; results in {args.out}")
    if args.canonical and summary["passed"] != summary["samples"]:
        failing = [t for t, v in summary["per_task"].items() if v["c"] < v["n"]]
        print(f"canonical solutions failing: {', '.join(failing)}")
        return 1
    return 0


def _blobs(args: argparse.Namespace) -> int:
    from evals import blob_bench
    from evals.report import markdown_table

    summary = blob_bench.run_blob_bench(
        args.out, args.counters, sets=args.sets, variants=args.variants,
        prompts=_pairs(args.prompt, "--prompt"), truths=_pairs(args.truth, "--truth"),
        samples=args.samples, base_url=args.base_url, temperature=args.temperature,
        workers=args.workers, scheduler=args.scheduler,
    )
    rows = [(g["counter"], g["variant"], g["set"], g["n"], g["exact"], g["mae"], g["bias"],
             g["parse_failures"]) for g in summary["groups"]]
    print(markdown_table(["counter", "prompt", "set", "answers", "exact", "MAE", "bias",
                          "unparsed"], rows))
    print(f"results in {args.out}")
    return 0


def _agent(args: argparse.Namespace) -> int:
    from evals import agent_bench

    return agent_bench.command(args)


_SUITES = {"code": _code, "blobs": _blobs, "agent": _agent}

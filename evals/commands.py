"""``bia bench``: run a benchmark suite and write its results folder.

    bia bench code --canonical
    bia bench code --samples samples.jsonl --workers 2
    bia bench code --generate MODEL --base-url http://localhost:8000/v1 --n 10
    bia bench blobs --counters classical constant:24 vlm:MODEL --base-url URL --samples 3
    bia bench agent --backends oracle 0.5b 1.5b
    bia bench all --human-eval-bia DIR --models 0.5b 1.5b

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
                        help="generate samples with MODEL first: 0.5b or 1.5b (the embedded "
                             "models, through the agent's backend) or a model on the server "
                             "given by --base-url")
    code.add_argument("--n", type=int, default=1, help="samples per task with --generate")
    code.add_argument("--temperature", type=float, default=0.2)
    code.add_argument("--max-tokens", type=int, default=512,
                      help="longest generated answer, in tokens (default: 512)")
    code.add_argument("--budget-minutes", type=float,
                      help="stop generating after this many minutes and score what exists; "
                           "the same command run again goes on where it stopped")
    code.add_argument("--stop-after-code", action="store_true",
                      help="end each answer where its first code block closes (saves the "
                           "tokens of the explanation small models add after the code)")
    code.add_argument("--generate-only", action="store_true",
                      help="write the samples and stop (score them later with --samples), e.g. "
                           "to hold a shared model lock only while generating")
    code.add_argument("--prompt-template", type=Path,
                      help="file with the generation prompt; {prompt} is the task's prompt "
                           "(default: human-eval-bia's own prompt for its tasks, else bia's)")
    code.add_argument("--base-url", help="OpenAI-compatible server for --generate")
    # CPU seconds, not wall seconds: OpenCL compiles each kernel on first use (5.5 s of CPU,
    # 10-30 s of wall time for one human-eval-bia canonical solution on this loaded machine).
    code.add_argument("--timeout", type=int, default=30,
                      help="CPU seconds per sample, counted after its imports (default: 30)")
    code.add_argument("--wall-timeout", type=float, default=120.0,
                      help="wall-clock seconds per sample at most (default: 120)")
    code.add_argument("--import-timeout", type=float, default=120.0,
                      help="seconds for a sample's imports before its clock starts")
    code.add_argument("--memory-mb", type=int, default=2048,
                      help="address space a sample may add, in MiB")
    code.add_argument("--data-dir", type=Path,
                      help="folder the tests read (human-eval-bia: its example_data)")
    code.add_argument("--data-at", metavar="PLACE",
                      help="where the data folder goes relative to a sample's working folder: "
                           "data (a copy inside) or ../NAME (beside it, read-only); default: "
                           "as the tests open it")
    code.add_argument("--mode", choices=("fork", "spawn"),
                      help="fork a warm worker per sample (default) or start a fresh Python")
    code.add_argument("--ks", type=int, nargs="+", default=[1, 5, 10], help="k of pass@k")
    _common(code, "code", cpus)

    every = sub.add_parser("all", help="every benchmark, one report with targets")
    every.add_argument("--human-eval-bia", type=Path, metavar="DIR",
                       help="human-eval-bia's folder (human-eval-bia.jsonl, example_data/)")
    every.add_argument("--models", nargs="*", default=[],
                       help="code-writing models to score: 0.5b, 1.5b, or server models")
    every.add_argument("--n", type=int, default=3, help="samples per task per model")
    every.add_argument("--no-generate", action="store_true",
                       help="score the samples that exist, generate none")
    every.add_argument("--budget-minutes", type=float,
                       help="per model and task set, stop generating after this long")
    every.add_argument("--agent-backends", nargs="*", default=[], metavar="MODEL",
                       help="add the agent's blob counter with each of these models")
    every.add_argument("--vlm", metavar="MODEL@URL", help="add a vision model's blob counter")
    every.add_argument("--base-url", help="OpenAI-compatible server for server models")
    every.add_argument("--readme", type=Path,
                       help="also write the generated tables into this README (between its "
                            "bench:code and bench:blobs markers)")
    every.add_argument("--blob-samples", type=int, default=3,
                       help="answers per image of sampling counters")
    _common(every, "all", min(cpus, 2))

    blobs = sub.add_parser("blobs", help="blob counting by vision models and baselines")
    blobs.add_argument("--counters", nargs="+", default=["classical", "constant:24"],
                       help="classical (classical:METHOD: segment_objects' METHOD), constant:N, "
                            "random:LOW:HIGH, vlm:MODEL, scripted:TEXT, agent:BACKEND")
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
    blobs.add_argument("--vlm", metavar="MODEL@URL",
                       help="add a vision model on an OpenAI-compatible server in one flag: "
                            "MODEL@URL, URL alone (the server's first model) or MODEL "
                            "(OpenAI's server)")
    blobs.add_argument("--classic-image", type=Path, metavar="BLOBS_TIF",
                       help="the classic blobs.tif (e.g. human-eval-bia's example_data/"
                            "blobs.tif) for the 'classic' set and the published gpt-4o row")
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
    missing = 0
    if args.generate:
        problems, _ = read_problems(problems_path)
        template = (args.prompt_template.read_text() if args.prompt_template
                    else code_bench.default_template(problems))
        model = load_model(args.generate, args.base_url, max_tokens=args.max_tokens,
                           stop=[code_bench.END_OF_CODE] if args.stop_after_code else [])
        samples_path = args.out / "samples.jsonl"
        try:
            samples_path, missing = code_bench.generate_samples(
                problems, model, samples_path, n=args.n, template=template,
                temperature=args.temperature,
                budget_seconds=args.budget_minutes * 60 if args.budget_minutes else None)
        except KeyboardInterrupt:
            print(f"interrupted: the samples written so far are kept in {samples_path}; "
                  "run the same command again to go on")
            return 130
        if args.generate_only:
            print(f"samples in {samples_path}; {missing} still to generate")
            return 0
    summary = code_bench.run_code_bench(
        args.out, problems_path=problems_path, samples_path=samples_path,
        canonical=args.canonical, workers=args.workers, scheduler=args.scheduler,
        limits=sandbox.Limits(timeout=args.wall_timeout, cpu_seconds=args.timeout,
                              memory_mb=args.memory_mb, import_timeout=args.import_timeout),
        data_dir=args.data_dir, data_at=args.data_at, mode=args.mode, ks=args.ks,
    )
    print(markdown_table(["k", "pass@k"], list(summary["pass_at_k"].items())))
    print(markdown_table(["category", "samples"], list(summary["categories"].items())))
    run = summary["run"]
    print(f"{summary['samples']} samples of {summary['tasks']} tasks; this run executed "
          f"{run['executed_now']} in {run['wall_seconds']} s; results in {args.out}")
    if missing:
        print(f"{missing} samples not generated yet (time budget reached): run the same "
              "command again to go on")
    if args.canonical and summary["passed"] != summary["samples"]:
        failing = [t for t, v in summary["per_task"].items() if v["c"] < v["n"]]
        print(f"canonical solutions failing: {', '.join(failing)}")
        return 1
    return 0


def _blobs(args: argparse.Namespace) -> int:
    from evals import blob_bench
    from evals.models import resolve_vlm
    from evals.report import markdown_table

    counters, base_url = list(args.counters), args.base_url
    if args.vlm:
        model, base_url = resolve_vlm(args.vlm, base_url)
        counters.append(f"vlm:{model}")
    sets = list(args.sets)
    if args.classic_image and "classic" not in sets:
        sets.append("classic")
    summary = blob_bench.run_blob_bench(
        args.out, counters, sets=sets, variants=args.variants,
        prompts=_pairs(args.prompt, "--prompt"), truths=_pairs(args.truth, "--truth"),
        samples=args.samples, base_url=base_url, temperature=args.temperature,
        workers=args.workers, scheduler=args.scheduler, classic_image=args.classic_image,
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


def _all(args: argparse.Namespace) -> int:
    from evals import suite
    from evals.report import markdown_table

    summary = suite.run_suite(
        args.out, human_eval_bia=args.human_eval_bia, models=args.models, n=args.n,
        generate=not args.no_generate, budget_minutes=args.budget_minutes,
        agent_backends=args.agent_backends, vlm=args.vlm, base_url=args.base_url,
        blob_samples=args.blob_samples, workers=args.workers,
    )
    print(markdown_table(["figure", "value", "target", "status"],
                         [(t["figure"], t["value"], t["target"], t["status"])
                          for t in summary["targets"]]))
    print(f"report: {args.out / 'report.md'}; README tables: {args.out / 'readme_tables.md'}")
    if args.readme and suite.fill_readme(args.readme, summary):
        print(f"updated the benchmark tables in {args.readme}")
    return 0


_SUITES = {"code": _code, "blobs": _blobs, "agent": _agent, "all": _all}

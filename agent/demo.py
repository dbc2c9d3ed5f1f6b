"""``bia demo``: the bundled analysis, asked in plain words, offline, checked against ground truth.

The embedded model receives "Denoise nuclei.tif, then segment the nuclei ..., then measure their
area" and writes one checked plan (denoise -> segment the denoised image -> measure) on the
bundled nuclei image (:mod:`agent.planner`). The demo prints the per-object table and its
summary, compares the result with the image's ground-truth labels, and saves outputs,
``session.py`` and ``provenance.json`` to a new session folder. Without the embedded model
(llama-cpp-python or weights missing), or with ``--pipeline``, the same tools run as a fixed
pipeline.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table as RichTable

from tools.errors import BiaError

DEMO_REQUEST = (
    "Denoise {image}, then segment the nuclei with Voronoi-Otsu labeling (spot sigma 3, "
    "outline sigma 1), then measure their area."
)

SHOWN_COLUMNS = ("area", "equivalent", "eccentricity", "solidity", "mean")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PIPELINE = (
    ("denoise_nlm", {}),
    # Chosen on a synthetic image of another seed than the bundled one (F1 0.74 there).
    ("voronoi_otsu_labeling", {"spot_sigma": 3.0, "outline_sigma": 1.0}),
    ("measure_objects", {}),
)


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bia demo``."""
    parser.add_argument("--image", type=Path, default=EXAMPLES / "nuclei.tif",
                        help="image to analyse (default: the bundled synthetic nuclei)")
    parser.add_argument("--truth", type=Path, default=None,
                        help="ground-truth labels (default: <image>_labels.tif if present)")
    parser.add_argument("--outdir", type=Path, default=Path("bia_output"),
                        help="folder under which the session folder is made")
    parser.add_argument("--request", default=DEMO_REQUEST,
                        help="what to ask the model; {image} is the image's name "
                             "(default: %(default)r)")
    parser.add_argument("--model", default=None,
                        help="embedded size (0.5b, 1.5b), .gguf file or server model name")
    parser.add_argument("--base-url", default=None, help="OpenAI-compatible server")
    parser.add_argument("--pipeline", action="store_true",
                        help="run the fixed pipeline without a model")


def _rich_table(frame: pd.DataFrame, title: str, max_rows: int = 10) -> RichTable:
    table = RichTable(title=title, show_lines=False)
    table.add_column(frame.index.name or "")
    for column in frame.columns:
        table.add_column(str(column), justify="right")
    for index, row in frame.head(max_rows).iterrows():
        table.add_row(str(index), *(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    return table


def compare_with_truth(labels: np.ndarray, truth: np.ndarray,
                       table: pd.DataFrame) -> dict[str, float]:
    """Object count, F1 at IoU 0.5 and mean-area error of ``labels`` against ``truth``."""
    from stardist.matching import matching

    from tools.measure import measure_objects

    scores = matching(truth, labels, thresh=0.5)
    true_areas = measure_objects(truth)["area_px"]
    found_areas = table["area_px"]
    return {
        "true_count": len(true_areas),
        "found_count": len(table),
        "f1_iou50": float(scores.f1),
        "precision": float(scores.precision),
        "recall": float(scores.recall),
        "mean_area_error_pct": float(100 * (found_areas.mean() / true_areas.mean() - 1)),
    }




def _run_pipeline(ws: Any, source: str, console: Console) -> tuple[str, str, list[Any]]:
    """The fixed pipeline through the registry, without a model."""
    import tools

    registry = tools.load_all()
    current = source
    results = []
    labels_name = ""
    with console.status("working...") as status:
        for step, (name, extra) in enumerate(PIPELINE, start=1):
            status.update(f"[{step}/{len(PIPELINE)}] {name}")
            arguments = {"labels": current, "image": source} if name == "measure_objects" \
                else {"image": current, **extra}
            result = registry.run(ws, name, arguments)
            results.append(result)
            console.print(f"[{step}/{len(PIPELINE)}] {name} ({result.seconds:.2f} s): "
                          f"{result.outputs[0]}")
            if name == "voronoi_otsu_labeling":
                labels_name = result.outputs[0]
            current = result.outputs[0]
    return labels_name, current, results


def _run_agent(agent: Any, request: str, console: Console) -> tuple[str, str, list[Any]]:
    """The same analysis asked in plain words; the model writes the plan."""
    console.print(f"request: [italic]{request}[/italic]")
    reply = agent.ask(request)
    stats = reply.stats
    console.print(f"[bold]answer[/bold] ({reply.seconds:.1f} s, {reply.model_calls} model "
                  f"call(s), prompt {stats.get('prompt_tokens', 0)} tokens, generated "
                  f"{stats.get('generated_tokens', 0)}): {reply.text}")
    workspace = agent.session.workspace
    kinds = {n: workspace.artifacts[n].kind for n in reply.outputs}
    labels = [n for n, k in kinds.items() if k == "labels"]
    tables = [n for n, k in kinds.items() if k == "table"]
    if reply.stopped or not labels or not tables:
        raise BiaError(f"the model did not finish the analysis ({reply.stopped or 'no table'})")
    steps = segmented_input(workspace, labels[-1])
    console.print(f"segmented: {steps}")
    return labels[-1], tables[-1], reply.tool_calls


def segmented_input(workspace: Any, labels: str) -> str:
    """Which image a label image was segmented from, and the tool that made that image."""
    artifact = workspace.artifacts[labels]
    source = artifact.provenance.get("inputs", {}).get("image", "")
    made_by = workspace.artifacts[source].provenance.get("tool") if source in workspace else None
    return f"{source} (made by {made_by})" if made_by else f"{source} (the input file)"


def demo_main(args: argparse.Namespace) -> int:
    """Ask the embedded model for the demo analysis (or run it fixed) and check the result."""
    from agent.backends import BackendError, make_chat_model
    from agent.commands import Progress
    from agent.planner import Agent
    from agent.session import Session
    from tools.measure import summarize_table
    from tools.workspace import Workspace

    console = Console()
    image_path = args.image.resolve()
    ws = Workspace([image_path.parent], output_root=args.outdir)
    source = ws.get(image_path.name)
    console.print(f"input: {ws.describe(source.name)}")
    agent = None
    if not args.pipeline:
        try:
            model, info = make_chat_model(args.model, base_url=args.base_url)
            loaded = f" (loaded in {info.load_seconds:.1f} s)" if info.load_seconds else ""
            console.print(f"model: {info.name}{loaded}")
            agent = Agent(model, session=Session(ws, model_info=info), model_info=info,
                          callback=Progress())
        except BackendError as exc:
            if args.model or args.base_url:
                console.print(f"[red]error[/red]: {exc}")
                return 1
            console.print(f"[yellow]no embedded model[/yellow] ({exc})\nrunning the fixed "
                          "pipeline instead: " + " -> ".join(n for n, _ in PIPELINE))
    session = None
    if agent is not None:
        try:
            labels_name, current, results = _run_agent(
                agent, args.request.format(image=image_path.name), console)
            session = agent.session
        except BiaError as exc:
            console.print(f"[yellow]{exc}[/yellow]; running the fixed pipeline instead: "
                          + " -> ".join(n for n, _ in PIPELINE))
            ws = Workspace([image_path.parent], output_root=args.outdir)
            source = ws.get(image_path.name)
    if session is None:
        labels_name, current, results = _run_pipeline(ws, source.name, console)
        session = Session(ws)
    table = ws.get(current).data
    shown = [c for c in table.columns if c.split("_")[0] in SHOWN_COLUMNS and c != "area_px"]
    console.print(_rich_table(table.set_index("label")[shown],
                              f"{len(table)} objects (first 10; all columns in the CSV)"))
    console.print(_rich_table(summarize_table(table[shown]).round(4), "summary", max_rows=50))

    report: dict[str, object] = {"image": str(image_path), "objects": len(table)}
    truth_path = args.truth or image_path.with_name(image_path.name.replace(".tif", "_labels.tif"))
    if truth_path.exists():
        from tools.io import read_image

        truth, _ = read_image(truth_path)
        check = compare_with_truth(ws.get(labels_name).data, truth.astype(np.int32), table)
        report["ground_truth"] = check
        console.print(
            f"ground truth: {check['true_count']} nuclei, found {check['found_count']}; "
            f"F1 at IoU 0.5 = {check['f1_iou50']:.3f} (precision {check['precision']:.3f}, "
            f"recall {check['recall']:.3f}); mean area error {check['mean_area_error_pct']:+.1f} %"
        )
    exported = session.export(extra={"report": report})
    console.print("saved: " + ", ".join(
        str(p) for p in [*exported.outputs.values(), exported.script, exported.provenance]))
    console.print(f"tool time {sum(r.seconds for r in results):.2f} s")
    return 0

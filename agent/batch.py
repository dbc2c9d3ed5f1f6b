"""``bia batch``: one analysis over every image in a folder, on dask.distributed.

::

    bia batch bia_output/session-.../session.py  plates/  --out plate_results
    bia batch pipeline.json plates/ --out plate_results --workers 4
    bia batch "segment the nuclei and measure their area" plates/ --out plate_results
    bia batch pipeline.yaml plates/ --out results --scheduler tcp://10.0.0.5:8786

The analysis is a :class:`~agent.pipeline.Pipeline`: an exported session (``session.py``), a
pipeline file (JSON/YAML list of ``{tool, arguments}`` steps), or a request in plain words,
which the agent turns into tool calls once, on the first image; those calls are then replayed
unchanged on every file, so every image gets exactly the same analysis.

Each file is processed in its own task on a dask.distributed cluster (a ``LocalCluster`` of
worker processes by default, or an existing scheduler). As each file finishes, its label images
and table are written to ``OUT/per_file/<file name>/`` and a line is appended to
``OUT/manifest.jsonl``; a failure (a corrupt file, a tool error) is recorded there too and the
batch goes on. A rerun with the same ``--out`` skips files already done (unchanged size and
modification time) and retries failures, so an interrupted batch resumes where it stopped.
At the end all per-file tables are joined into ``OUT/results.csv`` with a ``file`` column.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import logging
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from agent.pipeline import (
    Pipeline,
    PipelineError,
    build_pipeline,
    load_pipeline,
    pipeline_from_calls,
    replay,
)
from tools.errors import BiaError, InputError

MANIFEST = "manifest.jsonl"
PIPELINE_FILE = "pipeline.json"
RESULTS = "results.csv"
PER_FILE = "per_file"
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".zarr")


@dataclasses.dataclass
class BatchReport:
    """What a batch run did.

    Attributes
    ----------
    done, failed, skipped : list of str
        File names processed now, failed now, and skipped as already done.
    results : Path or None
        The combined table (``results.csv``), when any file produced a table.
    table : DataFrame or None
        Its contents.
    seconds : float
        Wall time, cluster start included.
    cluster_seconds : float
        Time to start (or connect to) the cluster and import the tools on its workers.
    interrupted : bool
        Whether the run was stopped before every file was processed.
    """

    done: list[str]
    failed: list[str]
    skipped: list[str]
    results: Path | None
    table: pd.DataFrame | None
    seconds: float
    cluster_seconds: float
    interrupted: bool = False


def find_images(folder: Path, pattern: str | None = None) -> list[Path]:
    """Image files (and OME-Zarr folders) directly in ``folder``, sorted by name."""
    if not folder.is_dir():
        raise InputError(f"{str(folder)!r} is not a folder")
    found = [
        p for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        and (pattern is None or fnmatch.fnmatch(p.name, pattern))
    ]
    return sorted(found, key=lambda p: p.name)


def _stamp(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


# -- the task run on a worker -------------------------------------------------------------------


def process_file(path: str, pipeline: dict[str, Any], out_dir: str,
                 save_images: bool = False) -> dict[str, Any]:
    """Run the pipeline on one file and save its outputs; never raises.

    Parameters
    ----------
    path : str
        The image file.
    pipeline : dict
        :meth:`Pipeline.to_dict` output (plain data, so it travels to worker processes).
    out_dir : str
        Folder for this file's outputs (emptied first: a rerun replaces a partial result).
    save_images : bool
        Also save intermediate images (denoised, filtered); labels and tables always are.

    Returns
    -------
    dict
        ``file``, ``status`` (``"done"`` or ``"failed"``), ``seconds``, ``rows``, ``table``,
        ``outputs`` (saved files), ``error``.
    """
    import tools
    from agent.pipeline import Step
    from tools.workspace import Workspace

    start = time.perf_counter()
    source = Path(path)
    record: dict[str, Any] = {"file": source.name, "status": "failed", "rows": None,
                              "table": None, "outputs": {}, "error": None}
    try:
        record.update(_stamp(source))
        registry = tools.load_all()
        steps = [Step(s["tool"], dict(s["arguments"]), list(s["outputs"]))
                 for s in pipeline["steps"]]
        plan = build_pipeline(steps, registry, source=pipeline.get("source", ""))
        target = Path(out_dir)
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        workspace = Workspace([source.parent], output_root=target)
        names = replay(plan, workspace, source.name, registry)
        table_name = None
        for step in plan.steps:
            for symbol in step.outputs:
                artifact = workspace.artifacts[names[symbol]]
                if artifact.kind == "table":
                    table_name = artifact.name  # the last table made is the result
                if artifact.kind in ("labels", "table") or save_images:
                    record["outputs"][symbol] = str(workspace.save(artifact.name, folder=target))
        if table_name is not None:
            record["rows"] = len(workspace.artifacts[table_name].data)
            record["table"] = str(workspace.artifacts[table_name].path)
        record["status"] = "done"
    except BiaError as exc:
        record["error"] = str(exc)
    except Exception as exc:  # a tool's bug on one file must not stop the batch
        last = traceback.extract_tb(exc.__traceback__)[-1]
        record["error"] = (f"{type(exc).__name__}: {exc} "
                           f"({Path(last.filename).name}:{last.lineno})")
    if record["status"] != "done" and Path(out_dir).is_dir() and not any(Path(out_dir).iterdir()):
        Path(out_dir).rmdir()
    record["seconds"] = round(time.perf_counter() - start, 3)
    return record


# -- manifest and results -----------------------------------------------------------------------


def read_manifest(out: Path) -> dict[str, dict[str, Any]]:
    """The latest record per file name; a torn last line (a crash mid-write) is ignored."""
    records: dict[str, dict[str, Any]] = {}
    path = out / MANIFEST
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "file" in record:
            records[record["file"]] = record
    return records


def _append(out: Path, record: dict[str, Any]) -> None:
    with (out / MANIFEST).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()


def is_done(record: dict[str, Any] | None, path: Path) -> bool:
    """Whether ``record`` is a finished result for the file as it is now."""
    if not record or record.get("status") != "done":
        return False
    if record.get("table") and not Path(record["table"]).exists():
        return False
    try:
        stamp = _stamp(path)
    except OSError:
        return False
    return record.get("size") == stamp["size"] and record.get("mtime_ns") == stamp["mtime_ns"]


def combine(out: Path, files: Sequence[Path]) -> pd.DataFrame | None:
    """Join the per-file tables of every done file into one, with a ``file`` column first."""
    records = read_manifest(out)
    frames = []
    for path in files:
        record = records.get(path.name)
        if record and record.get("status") == "done" and record.get("table"):
            table = pd.read_csv(record["table"])
            table.insert(0, "file", path.name)
            frames.append(table)
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True)


def _check_pipeline_matches(out: Path, pipeline: Pipeline, restart: bool) -> None:
    saved = out / PIPELINE_FILE
    current = {"steps": pipeline.to_dict()["steps"], "input": pipeline.input}
    if saved.exists() and not restart:
        try:
            before = json.loads(saved.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            before = None
        if before is not None and {"steps": before.get("steps"),
                                   "input": before.get("input")} != current:
            raise PipelineError(
                f"{out} holds results of a different analysis ({saved}); use another --out "
                "folder, or --restart to discard them"
            )
    if restart:
        for name in (MANIFEST, RESULTS):
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / PER_FILE, ignore_errors=True)
    saved.write_text(json.dumps(pipeline.to_dict(), indent=2, ensure_ascii=False),
                     encoding="utf-8")


# -- the run ------------------------------------------------------------------------------------


def _warm_up() -> int:
    """Import the tools on a worker once, before the first file (a few seconds per process)."""
    import tools

    return len(tools.load_all())


def _start_client(n_workers: int, scheduler: str | None) -> tuple[Any, Any]:
    from distributed import Client, LocalCluster

    if scheduler:
        client, cluster = Client(scheduler, timeout="20s"), None
    else:
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
    client.run(_warm_up)
    return client, cluster


def run_batch(
    pipeline: Pipeline,
    files: Sequence[Path],
    out: Path,
    *,
    n_workers: int = 2,
    scheduler: str | None = None,
    save_images: bool = False,
    restart: bool = False,
    progress: bool = True,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> BatchReport:
    """Run ``pipeline`` on every file on a dask.distributed cluster; see the module docstring.

    Parameters
    ----------
    pipeline : Pipeline
        The analysis.
    files : sequence of Path
        Image files; their names must be distinct.
    out : Path
        Output folder (made if needed); holds the manifest, per-file outputs and results.csv.
    n_workers : int
        Worker processes of the local cluster (ignored with ``scheduler``).
    scheduler : str, optional
        Address of an existing dask scheduler, e.g. ``tcp://127.0.0.1:8786``. Its workers need
        bia installed and must see the files and ``out`` at the same paths.
    save_images : bool
        Also save intermediate images.
    restart : bool
        Discard earlier results in ``out`` instead of resuming.
    progress : bool
        Show a progress bar.
    on_result : callable, optional
        Called with each file's record as it arrives (after it is in the manifest).

    Returns
    -------
    BatchReport
    """
    start = time.perf_counter()
    if n_workers < 1:
        raise InputError(f"n_workers must be at least 1, got {n_workers}")
    names = [p.name for p in files]
    if len(set(names)) != len(names):
        raise InputError("file names in a batch must be distinct")
    out.mkdir(parents=True, exist_ok=True)
    _check_pipeline_matches(out, pipeline, restart)
    previous = read_manifest(out)
    skipped = [p.name for p in files if is_done(previous.get(p.name), p)]
    pending = [p for p in files if p.name not in skipped]
    done: list[str] = []
    failed: list[str] = []
    interrupted = False
    cluster_seconds = 0.0
    if pending:
        from distributed import as_completed
        from tqdm import tqdm

        t0 = time.perf_counter()
        client, cluster = _start_client(n_workers, scheduler)
        cluster_seconds = time.perf_counter() - t0
        spec = pipeline.to_dict()
        bar = tqdm(total=len(pending), desc="batch", unit="file", disable=not progress)
        futures = []
        try:
            futures = [
                client.submit(process_file, str(p.resolve()), spec,
                              str((out / PER_FILE / p.name).resolve()), save_images,
                              key=f"bia-{i}-{p.name}", pure=False)
                for i, p in enumerate(pending)
            ]
            by_key = {f.key: p for f, p in zip(futures, pending, strict=True)}
            for future in as_completed(futures):
                path = by_key[future.key]
                try:
                    record = future.result()
                except Exception as exc:  # the worker died (memory) or the task was lost
                    record = {"file": path.name, "status": "failed", "rows": None,
                              "table": None, "outputs": {}, "seconds": None,
                              "error": f"worker failed: {type(exc).__name__}: {exc}"}
                _append(out, record)
                (done if record["status"] == "done" else failed).append(path.name)
                bar.update(1)
                if record["status"] != "done":
                    bar.write(f"failed: {path.name}: {record['error']}")
                if on_result is not None:
                    on_result(record)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            bar.close()
            for future in futures:
                future.cancel()
            client.close()
            if cluster is not None:
                cluster.close()
    table = combine(out, files)
    results = None
    if table is not None:
        results = out / RESULTS
        table.to_csv(results, index=False)
    return BatchReport(done, failed, skipped, results, table,
                       time.perf_counter() - start, cluster_seconds, interrupted)


# -- natural-language requests --------------------------------------------------------------------


def pipeline_from_request(request: str, first: Path, out: Path, *, model: Any = None,
                          model_info: Any = None, max_steps: int | None = None) -> Pipeline:
    """Ask the agent to do ``request`` on the first image and record its calls as a pipeline.

    Parameters
    ----------
    request : str
        What to do, in plain words.
    first : Path
        The image the agent works on.
    out : Path
        Batch output folder; the agent's session is kept under ``out/agent``.
    model : BaseChatModel, optional
        The chat model; the configured one (embedded or server) by default.
    model_info : ModelInfo, optional
        What the model is.

    Raises
    ------
    PipelineError
        When the agent is not installed or made no usable tool calls.
    """
    try:
        from agent.backends import make_chat_model
        from agent.planner import Agent
        from agent.session import Session
    except ImportError as exc:
        raise PipelineError(
            "turning a request into a pipeline needs the agent (agent.planner), which is not "
            f"installed here ({exc}); give an exported session.py or a pipeline JSON instead"
        ) from None
    import tools
    from tools.workspace import Workspace

    registry = tools.load_all()
    if model is None:
        model, model_info = make_chat_model(None)
    workspace = Workspace([first.parent], output_root=out / "agent")
    session = Session(workspace, model_info=model_info, registry=registry)
    del max_steps  # one plan per request: there are no steps to limit
    agent = Agent(model, session=session, registry=registry, model_info=model_info)
    reply = agent.ask(f"{request}\nThe image file is {first.name}.")
    if not session.calls:
        raise PipelineError(
            f"the agent made no tool call for this request on {first.name}; it answered: "
            f"{reply.text[:300]}"
        )
    session.export(out / "agent" / "session")
    return pipeline_from_calls(session.calls, registry, source=f"request: {request}")


def resolve_pipeline(spec: str, files: Sequence[Path], out: Path, **agent_kwargs: Any) -> Pipeline:
    """A pipeline from a file, or from a request (reusing ``out``'s if made for the same one)."""
    import tools

    registry = tools.load_all()
    path = Path(spec)
    if path.suffix.lower() in (".py", ".json", ".yaml", ".yml") or path.is_file():
        return load_pipeline(path, registry)
    saved = out / PIPELINE_FILE
    if saved.exists():  # resume: same request, same calls; never ask the model again
        data = json.loads(saved.read_text(encoding="utf-8"))
        if data.get("source") == f"request: {spec}":
            from agent.pipeline import Step

            steps = [Step(s["tool"], s["arguments"], s["outputs"]) for s in data["steps"]]
            return build_pipeline(steps, registry, source=data["source"])
    if not files:
        raise InputError("no image files to run the request on")
    return pipeline_from_request(spec, files[0], out, **agent_kwargs)


# -- command line --------------------------------------------------------------------------------


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``bia batch``."""
    parser.add_argument("analysis",
                        help="an exported session.py, a pipeline .json/.yaml, or a request in "
                             "quotes")
    parser.add_argument("folder", type=Path, help="folder of images to analyse")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder (a rerun with the same folder resumes)")
    parser.add_argument("--pattern", default=None,
                        help="only files whose name matches, e.g. '*_DAPI.tif'")
    parser.add_argument("--workers", type=int, default=2,
                        help="worker processes of the local cluster (default: %(default)s)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="use an existing dask scheduler instead of a local cluster")
    parser.add_argument("--save-images", action="store_true",
                        help="also save intermediate images (labels and tables always are)")
    parser.add_argument("--restart", action="store_true",
                        help="discard earlier results in --out instead of resuming")
    parser.add_argument("--model", default=None,
                        help="for a request: embedded model size, .gguf file or server model")
    parser.add_argument("--base-url", default=None,
                        help="for a request: OpenAI-compatible server URL")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def batch_main(args: argparse.Namespace) -> int:
    """Entry point of ``bia batch``: 0 if every file is done, 1 if some failed, 2 on errors."""
    try:
        files = find_images(args.folder, args.pattern)
        if not files:
            raise InputError(f"no image files in {args.folder}"
                             + (f" matching {args.pattern!r}" if args.pattern else ""))
        agent_kwargs: dict[str, Any] = {}
        if args.model or args.base_url:
            from agent.backends import make_chat_model

            agent_kwargs["model"], agent_kwargs["model_info"] = make_chat_model(
                args.model, base_url=args.base_url)
        if args.restart:
            (args.out / PIPELINE_FILE).unlink(missing_ok=True)
        pipeline = resolve_pipeline(args.analysis, files, args.out, **agent_kwargs)
        print(f"bia batch: {len(files)} files; {pipeline.describe()}", file=sys.stderr)
        report = run_batch(pipeline, files, args.out, n_workers=args.workers,
                           scheduler=args.scheduler, save_images=args.save_images,
                           restart=args.restart, progress=not args.quiet)
    except BiaError as exc:
        print(f"bia batch: {exc}", file=sys.stderr)
        return 2
    print(f"done {len(report.done)}, failed {len(report.failed)}, skipped (already done) "
          f"{len(report.skipped)}; {report.seconds:.1f} s")
    if report.failed:
        records = read_manifest(args.out)
        for name in report.failed:
            print(f"  failed: {name}: {records[name]['error']}")
    if report.results is not None:
        print(f"results: {report.results} ({len(report.table)} rows)")
    if report.interrupted:
        print("interrupted: rerun the same command to continue")
        return 130
    return 1 if report.failed else 0

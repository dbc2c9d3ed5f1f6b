"""``bia run`` and ``bia chat``: the agent in the terminal.

``bia run "segment the nuclei in examples/nuclei.tif and measure their area"`` answers one request,
prints the answer and the tables, and saves the outputs, ``session.py`` and ``provenance.json`` in a
new session folder. ``bia chat`` does the same turn after turn until ``/quit``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from agent.backends import BackendError, ModelInfo, make_chat_model
from agent.options import add_statement_arguments, stated_from_args
from agent.planner import Agent, Reply
from agent.session import Exported, Session
from tools.errors import BiaError
from tools.workspace import Workspace


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``run``, ``chat`` and ``demo``."""
    parser.add_argument(
        "--model", default=None,
        help="embedded model size (0.5b, 1.5b), a .gguf file, or a server's model name "
             "(default: the embedded model, or BIA_MODEL / the config file)",
    )
    parser.add_argument(
        "--base-url", default=None,
        help="OpenAI-compatible server, e.g. http://localhost:11434/v1 (Ollama); the key comes "
             "from BIA_API_KEY / OPENAI_API_KEY or ~/.config/bia/config.toml",
    )
    parser.add_argument("--outdir", default="bia_output",
                        help="folder in which a new session folder is made (default: %(default)s)")
    parser.add_argument("--root", action="append", default=None, metavar="FOLDER",
                        help="folder whose files may be read (repeatable; default: current)")
    parser.add_argument("--samples", type=int, default=1,
                        help="plans sampled per request; the one most agree on runs "
                             "(default: %(default)s)")
    parser.add_argument("--verbose", action="store_true",
                        help="print each plan, token counts and speeds")
    parser.add_argument("--vision", action=argparse.BooleanOptionalAction, default=None,
                        help="send the images a request names to the model, as PNG "
                             "thumbnails (a vision model on a server, --base-url; default: "
                             "guessed from its name)")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    add_statement_arguments(parser)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``bia run``."""
    parser.add_argument("request", nargs="+", help="what to do, in plain words")
    add_common_arguments(parser)


def add_chat_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``bia chat``."""
    add_common_arguments(parser)


class Progress:
    """Shows planning, the plan and each tool call on stderr while a request runs."""

    def __init__(self, enabled: bool = True) -> None:
        from rich.console import Console

        self.enabled = enabled
        self.console = Console(stderr=True, highlight=False)
        self._status: Any = None

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if event == "model_start":
            self._status = self.console.status(f"planning (model call {data['step']}) ...")
            self._status.__enter__()
        elif event == "plan":
            self.console.print("[cyan]plan[/]\n  " + data["plan"].render().replace(
                "\n", "\n  "), markup=True)
        elif event == "model_end" and self._status is not None:
            self._status.__exit__(None, None, None)
            self._status = None
        elif event == "tool_start":
            args = ", ".join(f"{k}={v!r}" for k, v in data["arguments"].items())
            self._status = self.console.status(f"running {data['tool']}({args}) ...")
            self._status.__enter__()
        elif event == "tool_end":
            if self._status is not None:
                self._status.__exit__(None, None, None)
                self._status = None
            e = data["event"]
            if e.kind == "call":
                args = ", ".join(f"{k}={v!r}" for k, v in e.arguments.items()
                                 if k != "pixel_size")
                outs = ", ".join(e.outputs) or "value"
                self.console.print(f"[green]ran[/] {e.tool}({args}) -> {outs} "
                                   f"[dim]{e.seconds:.1f} s[/]")
            else:
                self.console.print(f"[yellow]failed[/] {e.tool}: {e.message}")


def build_agent(args: argparse.Namespace, *, roots: list[str] | None = None,
                quiet: bool | None = None) -> Agent:
    """The agent described by the command-line options (model, server, folders)."""
    quiet = args.quiet if quiet is None else quiet
    model, info = make_chat_model(args.model, base_url=args.base_url, vision=args.vision,
                                  progress=not quiet)
    if info.load_seconds and not quiet:
        print(f"loaded {info.name} in {info.load_seconds:.1f} s", file=sys.stderr)
    workspace = Workspace(roots or args.root, output_root=args.outdir)
    workspace.state_default(**stated_from_args(args))  # --axes, --pixel-size ...
    session = Session(workspace, model_info=info)
    return Agent(model, session=session, model_info=info, samples=args.samples,
                 verbose=args.verbose, callback=Progress(enabled=not quiet))


def print_reply(reply: Reply, session: Session, *, file: Any = None) -> None:
    """The answer, the tables made in this turn (head and size) and the cited sources."""
    out = file or sys.stdout
    print(reply.text, file=out)
    shown = session.__dict__.setdefault("_readings_shown", set())
    for name, note in session.workspace.reading_notes().items():
        if name not in shown:  # how each image was read, once per session
            print(f"read {name}: {note}", file=out)
            shown.add(name)
    for name in reply.outputs:
        artifact = session.workspace.artifacts[name]
        if artifact.kind == "table":
            table = artifact.data
            print(f"\n{name}: {len(table)} rows", file=out)
            print(table.head(10).to_string(index=False, float_format=lambda x: f"{x:.4g}"),
                  file=out)
            if len(table) > 10:
                print(f"... {len(table) - 10} more rows", file=out)
    if reply.sources:
        print("\nSources:", file=out)
        for i, hit in enumerate(reply.sources, start=1):
            print(f"[{i}] {hit.title} ({hit.source})", file=out)


def export_session(session: Session, *, file: Any = None) -> Exported | None:
    """Save outputs, ``session.py`` and ``provenance.json``; print where (None if nothing ran)."""
    if not session.calls:
        return None
    exported = session.export()
    print(f"\nsaved to {exported.folder}: " + ", ".join(
        sorted(p.name for p in [*exported.outputs.values(), exported.script, exported.provenance])
    ), file=file or sys.stdout)
    return exported


def run_main(args: argparse.Namespace) -> int:
    """``bia run REQUEST``: answer one request and save the session."""
    request = " ".join(args.request)
    try:
        agent = build_agent(args)
        reply = agent.ask(request)
    except (BackendError, BiaError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print_reply(reply, agent.session)
    export_session(agent.session)
    return 0 if reply.stopped is None else 3


CHAT_HELP = "commands: /export (save now), /artifacts, /quit"


def chat_main(args: argparse.Namespace) -> int:
    """``bia chat``: a terminal conversation; the session is saved on /export and at the end."""
    try:
        agent = build_agent(args)
    except (BackendError, BiaError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    info: ModelInfo = agent.model_info
    print(f"bia chat with {info.name}. {CHAT_HELP}", file=sys.stderr)
    while True:
        try:
            line = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            break
        if not line:
            continue
        if line in ("/quit", "/exit", "quit", "exit"):
            break
        if line == "/export":
            if export_session(agent.session) is None:
                print("nothing to save yet", file=sys.stderr)
            continue
        if line == "/artifacts":
            for artifact in agent.session.workspace:
                print(f"{artifact.name}: {agent.session.workspace.describe(artifact.name)}")
            continue
        try:
            reply = agent.ask(line)
        except BiaError as exc:
            print(f"error: {exc}", file=sys.stderr)
            continue
        print_reply(reply, agent.session)
    export_session(agent.session)
    return 0


def resolve_roots(paths: list[str | Path]) -> list[str]:
    """Folders holding ``paths`` plus the current folder, without duplicates."""
    roots = [str(Path.cwd())]
    for path in paths:
        folder = str(Path(path).resolve().parent)
        if folder not in roots:
            roots.append(folder)
    return roots

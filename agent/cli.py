"""The ``bia`` command line: one verb per job, each implemented in the module that owns it.

Verbs are looked up lazily so that ``bia --help`` does not import TensorFlow, chromadb or gradio.
A verb module provides ``add_arguments(parser)`` and ``main(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

VERBS: dict[str, tuple[str, str]] = {
    "demo": ("agent.demo", "run the bundled demo analysis offline"),
    "run": ("agent.commands", "answer one natural-language request"),
    "chat": ("agent.commands", "chat with the assistant in the terminal"),
    "ui": ("ui.app", "open the chat interface in the browser"),
    "index": ("rag_index.commands", "build or update the documentation index"),
    "bench": ("evals.commands", "run a benchmark suite"),
    "batch": ("agent.batch", "run one analysis over a folder of images"),
    "serve-mcp": ("agent.mcp_server", "serve the tools over the Model Context Protocol"),
}


def _load(verb: str) -> object | None:
    module_name = VERBS[verb][0]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None  # verb not built yet
        raise


def build_parser(verbs: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser with a sub-command for each available verb."""
    parser = argparse.ArgumentParser(
        prog="bia", description="bia: an offline assistant for bio-image analysis."
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb in verbs if verbs is not None else VERBS:
        module = _load(verb)
        if module is None:
            continue
        verb_parser = sub.add_parser(verb, help=VERBS[verb][1], description=VERBS[verb][1])
        stem = verb.replace("-", "_")
        add = getattr(module, f"add_{stem}_arguments", None) or module.add_arguments
        add(verb_parser)
        verb_parser.set_defaults(
            _main=getattr(module, f"{stem}_main", None)
            or module.main
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bia`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    wanted = [argv[0]] if argv and argv[0] in VERBS else None
    parser = build_parser(wanted)
    args = parser.parse_args(argv)
    if not getattr(args, "verb", None):
        parser.print_help()
        return 2
    return int(args._main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

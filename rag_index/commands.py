"""``bia index``: build, update or inspect the documentation index."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rag_index.embedders import DEFAULT_EMBEDDER, EMBEDDERS


def add_index_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bia index``."""
    parser.add_argument(
        "--rebuild", action="store_true", help="drop the index and build it from scratch"
    )
    parser.add_argument(
        "--status", action="store_true", help="show what is indexed and what is out of date"
    )
    parser.add_argument(
        "--embedder",
        choices=list(EMBEDDERS),
        default=None,
        help=f"embedding model (default: $BIA_EMBEDDER or {DEFAULT_EMBEDDER})",
    )
    parser.add_argument(
        "--path", type=Path, default=None, help="index folder (default: $BIA_CACHE/index)"
    )
    parser.add_argument(
        "--packages",
        nargs="*",
        metavar="DIST",
        default=None,
        help="libraries whose docstrings are indexed (default: all; none: notes and tools only)",
    )
    parser.add_argument(
        "--search", metavar="QUERY", default=None, help="search the index after updating it"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def index_main(args: argparse.Namespace) -> int:
    """Run ``bia index``; 0 on success, 1 with a message on a problem."""
    from rag_index.errors import RetrievalError
    from rag_index.store import KnowledgeIndex
    from tools.errors import BiaError

    try:
        index = KnowledgeIndex(
            args.path, embedder=args.embedder, packages=_packages(args.packages)
        )
        if args.status:
            return _status(index)
        report = index.update(rebuild=args.rebuild, progress=not args.quiet)
        print(f"{index.path}: {report.summary()}")
        if args.search:
            from rag_index.context import format_citations, format_context
            from rag_index.search import search_index

            hits = search_index(index, args.search, k=5)
            for n, hit in enumerate(hits, 1):
                mark = "" if hit.relevant else "  (below relevance threshold)"
                print(f"{n}. {hit.source}  relevance={hit.relevance:.2f}{mark}\n   {hit.title}")
            _, citations = format_context(hits)
            if not citations:
                print("Nothing relevant found.")
            else:
                print(format_citations(citations))
    except RetrievalError as exc:
        print(f"bia index: {exc}", file=sys.stderr)
        return 1
    except BiaError as exc:
        print(f"bia index: {exc}", file=sys.stderr)
        return 1
    return 0


def _packages(names: list[str] | None) -> tuple:
    from rag_index.corpus import PACKAGES
    from rag_index.errors import QueryError

    if names is None:
        return PACKAGES
    wanted = [n for n in names if n.lower() != "none"]
    known = {p.dist: p for p in PACKAGES}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise QueryError(
            f"Unknown package(s) {', '.join(unknown)}; indexable: {', '.join(known)}."
        )
    return tuple(known[n] for n in wanted)


def _status(index: object) -> int:
    from rag_index.errors import IndexUnavailableError

    try:
        manifest = index.check()  # type: ignore[attr-defined]
    except IndexUnavailableError as exc:
        print(str(exc))
        return 1
    _, stale = index.stale_groups()  # type: ignore[attr-defined]
    print(f"index: {index.path}")  # type: ignore[attr-defined]
    print(f"embedder: {manifest['embedder']} ({manifest['embedder_version']})")
    print(f"chunks: {manifest['count']} in {len(manifest['groups'])} groups")
    if stale:
        print("out of date: " + ", ".join(sorted(stale)) + " (run `bia index` to update)")
    else:
        print("up to date")
    return 0

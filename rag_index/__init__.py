"""Retrieval over bia's knowledge: tool cards, how-to notes and library docstrings.

``import rag_index`` is cheap: chromadb, the embedders and the libraries whose docstrings are
indexed load only when an index is opened or built.

>>> from rag_index import search, shortlist_tools, format_context, is_relevant
>>> hits = search("how do I choose a threshold method?", k=5)        # doctest: +SKIP
>>> context, citations = format_context(hits)                          # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag_index.chunks import KINDS, Chunk, Hit
from rag_index.context import (
    ANSWER_INSTRUCTIONS,
    NOTHING_FOUND,
    Citation,
    format_citations,
    format_context,
)

if TYPE_CHECKING:
    from rag_index.search import (
        default_index,
        is_relevant,
        search,
        set_default_index,
        shortlist_tools,
    )
    from rag_index.store import KnowledgeIndex, default_path

__all__ = [
    "ANSWER_INSTRUCTIONS",
    "KINDS",
    "NOTHING_FOUND",
    "Chunk",
    "Citation",
    "Hit",
    "KnowledgeIndex",
    "default_index",
    "default_path",
    "format_citations",
    "format_context",
    "is_relevant",
    "search",
    "set_default_index",
    "shortlist_tools",
]

_LAZY = {
    "search": "rag_index.search",
    "shortlist_tools": "rag_index.search",
    "is_relevant": "rag_index.search",
    "default_index": "rag_index.search",
    "set_default_index": "rag_index.search",
    "KnowledgeIndex": "rag_index.store",
    "default_path": "rag_index.store",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rag_index' has no attribute {name!r}")

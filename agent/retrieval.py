"""What the agent retrieves before it asks the model: tool shortlist and documentation.

The documentation index lives in :mod:`rag_index` (``search`` and ``shortlist_tools``). The agent
talks to it through the small :class:`Retriever` protocol, and falls back to
:class:`KeywordRetriever` (BM25 over the registry's tool cards, with the index's own tokenizer)
when the index is not built, so the agent works either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from rag_index.bm25 import BM25
from tools.registry import Registry


@dataclass(frozen=True)
class Hit:
    """One retrieved passage (the shape of ``rag_index`` hits)."""

    id: str
    text: str
    source: str
    kind: str
    score: float
    title: str


@runtime_checkable
class Retriever(Protocol):
    """Finds documentation passages and the tools worth showing the model for a request."""

    def search(self, query: str, *, k: int = 5,
               kinds: Sequence[str] | None = None) -> list[Any]:
        """Passages with ``id, text, source, kind, score, title``, best first."""
        ...

    def shortlist_tools(self, query: str, *, k: int = 8) -> list[str]:
        """Names of the tools most relevant to ``query``, best first."""
        ...


class KeywordRetriever:
    """BM25 keyword search over the registry's tool cards (:class:`rag_index.bm25.BM25`).

    The same tokenizer, stop words and stemmer as the documentation index's keyword half, so a
    request matches a tool card here as it would in the index. A tool's name counts three times:
    it is the card's strongest keyword.

    Parameters
    ----------
    registry : Registry
        The tools whose cards are searched.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._cards = {t.name: t.card() for t in registry}
        self._names = list(self._cards)
        # b=0: no length normalisation. A card describes one tool, and a longer card (more
        # parameters) is not less about that tool.
        self._bm25 = BM25(
            [f"{card}\n{name} {name} {name}" for name, card in self._cards.items()], b=0.0
        )

    def _scores(self, query: str) -> list[tuple[float, str]]:
        scored = [
            (float(score), name)
            for score, name in zip(self._bm25.scores(query), self._names, strict=True)
            if score > 0
        ]
        return sorted(scored, key=lambda s: (-s[0], s[1]))

    def search(self, query: str, *, k: int = 5, kinds: Sequence[str] | None = None) -> list[Hit]:
        """Tool cards sharing words with ``query`` (only kind ``"tool"`` exists here)."""
        if kinds is not None and "tool" not in kinds:
            return []
        return [
            Hit(id=f"tool:{name}", text=self._cards[name], source=f"tool card: {name}",
                kind="tool", score=score, title=name)
            for score, name in self._scores(query)[:k]
        ]

    def shortlist_tools(self, query: str, *, k: int = 8) -> list[str]:
        """The ``k`` tools whose cards best match ``query``."""
        return [name for _, name in self._scores(query)[:k]]


class RagRetriever:
    """The :mod:`rag_index` search, falling back to keywords when it fails.

    Parameters
    ----------
    module : module
        ``rag_index`` (anything with ``search`` and ``shortlist_tools``).
    registry : Registry
        Used for the fallback and to drop tool names the registry does not have.
    """

    def __init__(self, module: Any, registry: Registry) -> None:
        self.module = module
        self.registry = registry
        self.fallback = KeywordRetriever(registry)
        self.last_error: str | None = None

    def search(self, query: str, *, k: int = 5, kinds: Sequence[str] | None = None) -> list[Any]:
        """``rag_index.search``; keyword search over tool cards if the index fails."""
        try:
            return list(self.module.search(query, k=k, kinds=kinds))
        except Exception as exc:  # an unbuilt or broken index must not stop the agent
            self.last_error = f"{type(exc).__name__}: {exc}"
            return self.fallback.search(query, k=k, kinds=kinds)

    def shortlist_tools(self, query: str, *, k: int = 8) -> list[str]:
        """``rag_index.shortlist_tools`` limited to registered tools; keywords on failure."""
        try:
            names = [n for n in self.module.shortlist_tools(query, k=k) if n in self.registry]
        except Exception as exc:  # see search
            self.last_error = f"{type(exc).__name__}: {exc}"
            names = []
        return names or self.fallback.shortlist_tools(query, k=k)


def default_retriever(registry: Registry) -> Retriever:
    """The documentation index (:mod:`rag_index`), with keyword search when it is not built."""
    import rag_index

    return RagRetriever(rag_index, registry)

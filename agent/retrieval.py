"""What the agent retrieves before it asks the model: tool shortlist and documentation.

The documentation index lives in :mod:`rag_index` (``search`` and ``shortlist_tools``). The agent
talks to it through the small :class:`Retriever` protocol, and falls back to
:class:`KeywordRetriever` (word overlap with the registry's tool cards) when the index module lacks
those functions or its index is not built, so the agent works either way.
"""

from __future__ import annotations

import importlib
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from tools.registry import Registry

_WORD = re.compile(r"[a-zµ0-9]+")
_STOP_WORDS = (
    "a an and are as at be by do does for from give how i if in into is it its me my of on or "
    "please show tell that the their them then these this to use using what which with you your "
    "can could would should"
)
_STOP = frozenset(_STOP_WORDS.split())


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


def words(text: str) -> list[str]:
    """Lower-case content words of ``text`` (a crude stemmer folds plurals and -ing)."""
    out = []
    for word in _WORD.findall(text.lower().replace("_", " ")):
        if word in _STOP or len(word) < 2:
            continue
        for suffix in ("ing", "es", "s"):
            if len(word) > len(suffix) + 3 and word.endswith(suffix):
                word = word[: -len(suffix)]
                break
        out.append(word)
    return out


class KeywordRetriever:
    """Word-overlap (tf-idf weighted) search over the registry's tool cards.

    Parameters
    ----------
    registry : Registry
        The tools whose cards are searched.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._cards = {t.name: t.card() for t in registry}
        self._bags = {name: Counter(words(card) + words(name) * 3)
                      for name, card in self._cards.items()}
        n = max(1, len(self._bags))
        df: Counter[str] = Counter()
        for bag in self._bags.values():
            df.update(set(bag))
        self._idf = {w: math.log(1 + n / c) for w, c in df.items()}

    def _scores(self, query: str) -> list[tuple[float, str]]:
        terms = set(words(query))
        scored = []
        for name, bag in self._bags.items():
            score = sum(self._idf.get(t, 0.0) * (1 + math.log(bag[t])) for t in terms if t in bag)
            if score > 0:
                scored.append((score, name))
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
    """The documentation index when :mod:`rag_index` provides it, else keyword search."""
    try:
        module = importlib.import_module("rag_index")
    except ImportError:
        return KeywordRetriever(registry)
    if callable(getattr(module, "search", None)) and callable(
        getattr(module, "shortlist_tools", None)
    ):
        return RagRetriever(module, registry)
    return KeywordRetriever(registry)

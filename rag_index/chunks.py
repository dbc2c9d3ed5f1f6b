"""The two records retrieval deals in: a chunk of the corpus and a hit for a query."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["tool", "note", "api"]
KINDS: tuple[str, ...] = ("tool", "note", "api")


@dataclass(frozen=True)
class Chunk:
    """One piece of the corpus, embedded and stored as one record.

    Attributes
    ----------
    id : str
        Unique and stable: ``tool:<name>``, ``note:<slug>#<heading>``, ``api:<qualified name>``,
        with ``~2``, ``~3``... appended for the continuation of a long text.
    text : str
        What is embedded and shown to a model; an API chunk starts with the call signature.
    source : str
        What a citation names: ``tool:<name>``, ``note:<slug>`` or ``api:<qualified name>``.
    kind : {"tool", "note", "api"}
        Where the text comes from.
    title : str
        A short human-readable title.
    group : str
        The unit the index is updated by (``tools``, ``note:<slug>``, ``pkg:<distribution>``).
    """

    id: str
    text: str
    source: str
    kind: str
    title: str
    group: str

    def metadata(self) -> dict[str, str]:
        """The fields stored beside the text in the vector store."""
        return {"source": self.source, "kind": self.kind, "title": self.title, "group": self.group}


@dataclass
class Hit:
    """One retrieved chunk.

    Attributes
    ----------
    id, text, source, kind, title : str
        As in :class:`Chunk`.
    score : float
        Rank-fusion score of the search (higher is better); only comparable within one query.
    similarity : float
        Cosine similarity between the query and the chunk under the dense embedder, or NaN when
        the chunk was found by keywords only.
    keyword_score : float
        BM25 score, 0 when the chunk was not among the keyword candidates.
    relevance : float
        Evidence that the chunk answers the query: the mean of ``similarity`` and the
        idf-weighted share of the query's terms the chunk contains, in [0, 1].
    relevant : bool
        Whether ``relevance`` passes the threshold (see :func:`rag_index.is_relevant`).
    """

    id: str
    text: str
    source: str
    kind: str
    title: str
    score: float
    similarity: float = float("nan")
    keyword_score: float = 0.0
    relevance: float = 1.0
    relevant: bool = True
    extra: dict[str, float] = field(default_factory=dict)

    def matches(self, expected: str) -> bool:
        """Whether this hit is the expected answer ``expected``, robust to chunking.

        ``expected`` may be a chunk id, a source (``note:threshold-methods``) or a note heading
        (``note:threshold-methods#otsu``): a hit matches when its id or source equals it or its id
        continues it (``...#otsu~2``).
        """
        return (
            self.id == expected
            or self.source == expected
            or self.id.startswith(expected + "~")
            or self.id.startswith(expected + "#")
        )

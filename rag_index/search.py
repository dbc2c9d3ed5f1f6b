"""Search the index: dense and keyword retrieval fused by reciprocal rank.

The public entry points (:func:`search`, :func:`shortlist_tools`, :func:`is_relevant`) use a
process-wide default index at :func:`~rag_index.store.default_path`, built on first use and
updated when the corpus changed. Tests and embedders' benchmarks pass their own
:class:`~rag_index.store.KnowledgeIndex` instead.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Literal

import numpy as np

from rag_index.chunks import KINDS, Hit
from rag_index.errors import QueryError
from rag_index.store import KnowledgeIndex

Mode = Literal["hybrid", "dense", "keyword"]

#: Longest query text used; MiniLM reads ~256 word pieces anyway, and a pasted log or script
#: should not make keyword scoring slow.
MAX_QUERY_CHARS = 2000
#: Candidates taken from each retriever before fusion.
CANDIDATES = 50
#: Reciprocal-rank-fusion constant (Cormack et al. use 60).
RRF_K = 60
#: A hit is relevant when its relevance (mean of the cosine similarity and the idf-weighted
#: share of the query's terms it contains) reaches this. Calibrated by ``python -m
#: evals.rag_bench`` on the labelled questions and 20 off-topic ones, several of them sharing
#: words with the corpus ("track a parcel", "screen resolution"); see the README, Retrieval section.
RELEVANCE_THRESHOLDS: dict[str, float] = {"static": 0.35, "minilm-int8": 0.32, "minilm": 0.32}

_default: KnowledgeIndex | None = None
_lock = threading.Lock()


def set_default_index(index: KnowledgeIndex | None) -> None:
    """Use ``index`` for :func:`search` and :func:`shortlist_tools` (None: back to default)."""
    global _default
    with _lock:
        _default = index


def default_index(*, progress: bool = True) -> KnowledgeIndex:
    """The process-wide index, built or updated on first use."""
    global _default
    with _lock:
        if _default is None:
            index = KnowledgeIndex()
            index.ensure(progress=progress)
            _default = index
        return _default


def clean_query(query: object) -> str:
    """The query text to search, or QueryError for an empty or non-text query."""
    if not isinstance(query, str):
        raise QueryError(f"A search query must be text, got {type(query).__name__}.")
    text = " ".join(query.split())
    if not text:
        raise QueryError("The search query is empty: ask a question or name a method.")
    return text[:MAX_QUERY_CHARS]


def _check_kinds(kinds: Sequence[str] | None) -> list[str] | None:
    if kinds is None:
        return None
    if isinstance(kinds, str):
        kinds = [kinds]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise QueryError(f"Unknown kind(s) {unknown}; choose from {list(KINDS)}.")
    return list(kinds)


def search_index(
    index: KnowledgeIndex,
    query: str,
    *,
    k: int = 5,
    kinds: Sequence[str] | None = None,
    mode: Mode = "hybrid",
) -> list[Hit]:
    """Search one index; see :func:`search` for the parameters."""
    text = clean_query(query)
    kinds = _check_kinds(kinds)
    if not isinstance(k, int) or k < 1:
        raise QueryError(f"k must be a positive integer, got {k!r}.")
    corpus = index.corpus()
    if not corpus.ids:
        return []
    vector = index.embedder.embed([text])[0]
    fused: dict[str, float] = {}
    keyword: dict[str, float] = {}
    if mode in ("hybrid", "dense"):
        for rank, (cid, _) in enumerate(index.dense(vector, CANDIDATES, kinds)):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
    if mode in ("hybrid", "keyword"):
        scores = index.bm25().scores(text)
        if kinds:
            allowed = np.array([m.get("kind") in kinds for m in corpus.metadatas])
            scores = np.where(allowed, scores, 0.0)
        top = np.argsort(-scores, kind="stable")[:CANDIDATES]
        for rank, i in enumerate(t for t in top if scores[t] > 0):
            cid = corpus.ids[i]
            keyword[cid] = float(scores[i])
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
    threshold = RELEVANCE_THRESHOLDS.get(index.embedder.name, 0.35)
    hits: list[Hit] = []
    seen: set[str] = set()
    for cid, score in sorted(fused.items(), key=lambda item: -item[1]):
        if len(hits) == k:
            break
        # One hit per function or note section: its continuation chunks would crowd out
        # other answers (local_maxima, local_maxima~4, local_maxima~5).
        base = cid.split("~", 1)[0]
        if base in seen:
            continue
        seen.add(base)
        i = corpus.position[cid]
        meta = corpus.metadatas[i]
        similarity = float(corpus.embeddings[i] @ vector) if len(corpus.embeddings) else 0.0
        coverage = float(index.bm25().coverage(text, [i])[0])
        relevance = (max(similarity, 0.0) + coverage) / 2
        hits.append(
            Hit(
                id=cid,
                text=corpus.documents[i],
                source=str(meta.get("source", cid)),
                kind=str(meta.get("kind", "")),
                title=str(meta.get("title", cid)),
                score=score,
                similarity=similarity,
                keyword_score=keyword.get(cid, 0.0),
                relevance=relevance,
                relevant=relevance >= threshold,
            )
        )
    return hits


def search(
    query: str,
    *,
    k: int = 5,
    kinds: Sequence[str] | None = None,
    mode: Mode = "hybrid",
    index: KnowledgeIndex | None = None,
) -> list[Hit]:
    """Retrieve the chunks that best answer ``query``.

    Parameters
    ----------
    query : str
        A question or keywords. Whitespace is collapsed; text past 2,000 characters is ignored.
    k : int
        Number of hits.
    kinds : sequence of {"tool", "note", "api"}, optional
        Restrict to these kinds of chunk.
    mode : {"hybrid", "dense", "keyword"}
        Dense embeddings, BM25 keywords, or both fused by reciprocal rank (default).
    index : KnowledgeIndex, optional
        The index to search; the default one (built on first use) if None.

    Returns
    -------
    list of Hit
        Best first. Each has ``relevant`` set; see :func:`is_relevant`.

    Raises
    ------
    QueryError
        For an empty or non-text query, an unknown kind or a bad ``k``.
    """
    clean_query(query)  # fail on bad input before building anything
    return search_index(index or default_index(), query, k=k, kinds=kinds, mode=mode)


def is_relevant(hits: Hit | Sequence[Hit]) -> bool:
    """Whether a hit (or any of a list of hits) is relevant enough to answer from.

    When this is False the agent should say that the documentation has nothing on the question
    rather than answer from the hits.
    """
    if isinstance(hits, Hit):
        return hits.relevant
    return any(h.relevant for h in hits)


def shortlist_tools(
    query: str, *, k: int = 8, index: KnowledgeIndex | None = None
) -> list[str]:
    """Names of the registered tools that best fit ``query``, best first.

    Tool cards are searched first; API and note hits that name a registered tool (a note on
    Voronoi-Otsu mentions ``voronoi_otsu_labeling``) add that tool after them. Only tools in
    the registry now are returned, so a stale index cannot offer a tool that is gone.
    """
    clean_query(query)
    index = index or default_index()
    registered = index.tool_names()
    if not registered:
        return []
    names: list[str] = []
    for hit in search_index(index, query, k=max(k, 1) * 2, kinds=["tool"]):
        name = hit.source.split(":", 1)[1]
        if name in registered and name not in names:
            names.append(name)
    if len(names) < k:
        for hit in search_index(index, query, k=10, kinds=["note", "api"]):
            for name in sorted(registered - set(names)):
                if name in hit.text and len(names) < k:
                    names.append(name)
    return names[:k]

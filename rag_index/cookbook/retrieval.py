"""Find the worked examples most like a request: BM25 keywords, static embeddings, or both.

File names are replaced by a placeholder before indexing and searching (``"dapi_03.tif"`` ->
``"file.tif"``): a request's file names say nothing about the analysis, and their parts
("dapi", "03") would otherwise pull in examples that merely share a stem. The extension stays,
so a table request (``.csv``) still finds table examples.

Words biologists use for the same thing ("nuclei", "cells", "blobs", "objects"; "spots",
"puncta", "foci"; "border", "edge"; "µm²", "square microns") also add one shared concept term
(``concept_object``...), so that a request about cells finds an example written about nuclei:
the plan for counting either is the same. A request that names no file gets
``concept_nofile``: plain questions and follow-ups name none.

Which retriever :func:`default_retriever` uses was chosen by measurement
(``python -m evals.toolbench.cookbook``: hold out a fifth of the examples, search with their
requests against the rest, count how often the top 3 hold an example with the same tool
sequence).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np

from rag_index.bm25 import BM25
from rag_index.cookbook import Example, load_examples
from rag_index.embedders import get_embedder
from rag_index.errors import QueryError
from rag_index.search import RRF_K

Mode = Literal["keyword", "dense", "hybrid"]

#: Chosen by evals/toolbench/cookbook.py (README, "Worked examples").
DEFAULT_MODE: Mode = "hybrid"

_FILE = re.compile(r"[\w.\-]*\w\.(tiff?|csv|png|jpe?g|zarr|czi|nd2|lif)\b", re.IGNORECASE)
# A file name in quotes may hold spaces ("HeLa control.tif").
_QUOTED_FILE = re.compile(r"[\"'][^\"']+\.(tiff?|csv|png|jpe?g|zarr|czi|nd2|lif)[\"']",
                          re.IGNORECASE)


#: Concept terms added for the words that name them (matched case-insensitively).
CONCEPTS: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern, re.IGNORECASE)
    for name, pattern in {
        "object": r"\b(nucle\w*|cells?|blobs?|objects?|particles?|colon\w+|organoids?|beads?)\b",
        "spot": r"\b(spots?|puncta|punctum|foci|focus|dots?|vesicles?|mrna|smfish|fish)\b",
        "border": r"\b(borders?|edges?|cut[- ]off|cut by)\b",
        "count": r"\b(how many|number of|count\w*|cuont)\b",
        "mean": r"\b(average|mean|avarage|avg)\b",
        "area": r"(µm²|µm2|um2|\bsquare micro\w*|\barea\b|\bsizes?\b)",
        "movie": r"\b(movie|time-?lapse|track\w*|frames?|over time|follow)\b",
        "stack": r"\b(3d|z-?stack|stack|volumes?|slices?)\b",
        "question": r"\b(difference between|explain|why|when should|how do i|what does|"
                    r"recommend\w*|what is an?|used for)\b",
        # Methods and inputs named in many words: a request naming one should find examples
        # that use it.
        "stardist": r"\bstar-?dist\b",
        "watershed": r"\bwatershed\b",
        "voronoi": r"\bvoronoi\b",
        "threshold": r"\b(otsu|li|threshold\w*)\b",
        "denoise": r"\b(denois\w*|noise\w*|noisy|grainy|low-?light|snr)\b",
        "background": r"\b(background|illumination|top-?hat|rolling|shading|vignett\w*)\b",
        "metadata": r"(pixel size|\baxes\b|\bchannels?\b|calibrat\w*|z[- ]step|between slices|"
                    r"voxel|frames? every|\d+ ?(nm|µm|um|s|min)\b)",
        "labels": r"\b(label image|masks?|segmentation|already segmented|annotation|"
                  r"ground truth)\b",
    }.items()
}


def normalise_request(text: str) -> str:
    """The request with file names replaced by ``file.<extension>`` and concept terms added.

    Parameters
    ----------
    text : str
        A request.

    Returns
    -------
    str

    Examples
    --------
    >>> normalise_request('Count cells in "my plate 3.tif" and b_2.csv')
    'Count cells in file.tif and file.csv concept_object concept_count'
    """
    text = _QUOTED_FILE.sub(lambda m: f"file.{m.group(1).lower()}", text)
    text, files = _FILE.subn(lambda m: f"file.{m.group(1).lower()}", text)
    concepts = [f"concept_{name}" for name, pattern in CONCEPTS.items() if pattern.search(text)]
    if not files and "file." not in text:
        concepts.append("concept_nofile")  # plain questions and follow-ups name no file
    return " ".join([text, *concepts])


def document_text(example: Example) -> str:
    """What is indexed for one example: its normalised request and its tags."""
    return normalise_request(example.request) + " " + " ".join(example.tags)


class CookbookRetriever:
    """Ranks examples by how like a request their requests are.

    Parameters
    ----------
    examples : sequence of Example
        The examples to search.
    mode : {"keyword", "dense", "hybrid"}
        BM25 over the normalised request and tags, cosine similarity of static (WordLlama)
        embeddings, or both fused by reciprocal rank.

    Examples
    --------
    >>> r = CookbookRetriever(load_examples(), mode="keyword")
    >>> r.search("number of puncta in x.tif?", k=1)[0].tools
    ('detect_spots',)
    """

    def __init__(self, examples: Sequence[Example], *, mode: Mode = DEFAULT_MODE) -> None:
        if mode not in ("keyword", "dense", "hybrid"):
            raise QueryError(f"mode must be 'keyword', 'dense' or 'hybrid', got {mode!r}")
        if not examples:
            raise QueryError("there are no examples to search")
        self.examples = list(examples)
        self.mode = mode
        texts = [document_text(ex) for ex in self.examples]
        self._bm25 = BM25(texts) if mode != "dense" else None
        self._embedder = get_embedder("static") if mode != "keyword" else None
        self._vectors = self._embedder.embed(texts) if self._embedder is not None else None

    def search(self, request: str, *, k: int = 3) -> list[Example]:
        """The ``k`` examples most like ``request``, best first.

        Parameters
        ----------
        request : str
            The user's request.
        k : int
            How many examples (at least 1).

        Returns
        -------
        list of Example
        """
        if not isinstance(request, str) or not request.strip():
            raise QueryError("the request to search examples for is empty")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise QueryError(f"k must be a positive integer, got {k!r}")
        text = normalise_request(request)
        fused = np.zeros(len(self.examples))
        if self._bm25 is not None:
            fused += _rrf(self._bm25.scores(text))
        if self._vectors is not None and self._embedder is not None:
            fused += _rrf(self._vectors @ self._embedder.embed([text])[0])
        order = np.argsort(-fused, kind="stable")[:k]
        return [self.examples[i] for i in order]


def _rrf(scores: np.ndarray) -> np.ndarray:
    """Reciprocal-rank weights of one ranking (as rag_index.search fuses dense and BM25)."""
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[np.argsort(-scores, kind="stable")] = np.arange(len(scores))
    return 1.0 / (RRF_K + ranks + 1)


@functools.cache
def default_retriever() -> CookbookRetriever:
    """The retriever over all bundled examples, built once per process."""
    return CookbookRetriever(load_examples(), mode=DEFAULT_MODE)


def same_tools_hit_rate(
    examples: Sequence[Example],
    *,
    mode: Mode,
    k: int = 3,
    folds: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """How often a held-out request's top ``k`` holds an example with the same tool sequence.

    The examples are shuffled and split into ``folds`` parts; each part in turn is held out
    (20 % with 5 folds) and its requests are searched against the other parts.

    Parameters
    ----------
    examples : sequence of Example
    mode : {"keyword", "dense", "hybrid"}
    k : int
        Examples retrieved per request.
    folds : int
        Number of parts (at least 2).
    seed : int
        Seed of the shuffle.

    Returns
    -------
    dict
        ``hit_rate`` (top ``k``), ``top1`` (the first example has the same tools),
        ``queries``, ``ms_per_query`` (median), and ``by_theme``: the top-``k`` rate per id
        prefix (``count``, ``measure``, ``followup``...).

    Examples
    --------
    >>> same_tools_hit_rate(load_examples(), mode="keyword")["hit_rate"] > 0.5
    True
    """
    import time

    if folds < 2:
        raise QueryError(f"folds must be at least 2, got {folds}")
    order = np.random.default_rng(seed).permutation(len(examples))
    parts = np.array_split(order, folds)
    hits = top1 = 0
    times: list[float] = []
    themes: dict[str, list[bool]] = {}
    for held in parts:
        held_set = set(held.tolist())
        retriever = CookbookRetriever(
            [ex for i, ex in enumerate(examples) if i not in held_set], mode=mode
        )
        for i in held:
            query = examples[i]
            start = time.perf_counter()
            found = retriever.search(query.request, k=k)
            times.append(time.perf_counter() - start)
            same = [ex.tools == query.tools for ex in found]
            hits += any(same)
            top1 += same[0]
            themes.setdefault(query.id.split("-")[0], []).append(any(same))
    n = len(examples)
    return {
        "hit_rate": hits / n,
        "top1": top1 / n,
        "queries": float(n),
        "ms_per_query": float(np.median(times) * 1000),
        "by_theme": {theme: float(np.mean(v)) for theme, v in sorted(themes.items())},
    }

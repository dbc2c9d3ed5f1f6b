"""Turn hits into a numbered context block a model can cite, and the list of what [n] means."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag_index.chunks import Hit

ANSWER_INSTRUCTIONS = (
    "Answer from the numbered context only. After each statement taken from it, cite its "
    "source as [n]. If the context does not answer the question, say that the documentation "
    "has nothing on it instead of guessing."
)
NOTHING_FOUND = (
    "The documentation index has nothing relevant to this question. Say so plainly; do not "
    "guess an answer."
)


@dataclass(frozen=True)
class Citation:
    """What a citation number in an answer refers to.

    Attributes
    ----------
    number : int
        The ``[n]`` used in the context and the answer.
    source : str
        ``note:<slug>``, ``api:<qualified name>`` or ``tool:<name>``.
    title : str
        A readable title (note heading, function summary, tool name).
    label : str
        What to show a person: ``note threshold-methods`` or ``skimage.filters.threshold_otsu``.
    """

    number: int
    source: str
    title: str
    label: str


def citation_label(source: str) -> str:
    """A short human label for a source id."""
    kind, _, name = source.partition(":")
    if kind == "note":
        return f"note {name}"
    if kind == "tool":
        return f"tool {name}"
    return name or source


def format_context(
    hits: Sequence[Hit],
    *,
    max_chars: int = 6000,
    relevant_only: bool = True,
) -> tuple[str, list[Citation]]:
    """A numbered context block with sources, and the citations its numbers stand for.

    Hits from the same source share one number, so an answer cites "[1]" for a note however
    many of its sections were retrieved.

    Parameters
    ----------
    hits : sequence of Hit
        Search results, best first.
    max_chars : int
        Budget for the block; later hits are cut or left out to keep a small model's prompt
        short.
    relevant_only : bool
        Leave out hits below the relevance threshold.

    Returns
    -------
    text : str
        ``[1] note threshold-methods — Choosing a threshold method: Otsu\\n<text>\\n\\n[2] ...``,
        or :data:`NOTHING_FOUND` when no hit is usable.
    citations : list of Citation
        One per number, in order.
    """
    used = [h for h in hits if h.relevant or not relevant_only]
    numbers: dict[str, int] = {}
    citations: list[Citation] = []
    blocks: list[str] = []
    budget = max_chars
    for hit in used:
        if budget <= 0:
            break
        if hit.source not in numbers:
            numbers[hit.source] = len(numbers) + 1
            citations.append(
                Citation(numbers[hit.source], hit.source, hit.title, citation_label(hit.source))
            )
        head = f"[{numbers[hit.source]}] {citation_label(hit.source)} — {hit.title}"
        body = hit.text.strip()
        room = budget - len(head) - 1
        if room < 80:
            break
        if len(body) > room:
            body = body[: room - 3].rstrip() + "..."
        blocks.append(f"{head}\n{body}")
        budget -= len(head) + len(body) + 2
    cited = {int(b[1 : b.index("]")]) for b in blocks}
    citations = [c for c in citations if c.number in cited]
    if not blocks:
        return NOTHING_FOUND, []
    return "\n\n".join(blocks), citations


def format_citations(citations: Sequence[Citation]) -> str:
    """The reference list to print under an answer: ``[1] note threshold-methods``."""
    return "\n".join(f"[{c.number}] {c.label}" for c in citations)

"""Worked examples: request -> plan pairs, retrieved per request into the planner's prompt.

The examples live in ``examples/*.yaml`` beside this module, one record each::

    - id: count-001
      request: I'd like to know the nucleus count of dapi_field1.tif
      files: {dapi_field1.tif: nuclei}
      plan: |
        labels = segment_objects(image=dapi_field1)
        answer(count(labels))
      tags: [count, nuclei, segment]
      truth: dapi_field1.tif:count

``files`` maps each file the request names to a generator kind of
:mod:`rag_index.cookbook.data`, so that every plan can be run on generated data (the cookbook
test does). ``truth`` (optional) names the known value the first answered number must match.
A follow-up (tag ``follow-up``) has a ``context``: the earlier request and plan. Its own plan
uses what the earlier one stored, by the names the session binds them to (the artifacts'
names: ``field_a_labels``, ``field_a_labels_measurements``), as the planner lists them.

The examples were written for bia from what biologists ask, never from benchmark items; a test
checks that no benchmark request is in here verbatim or nearly so.

:func:`search` returns the examples whose requests are most like a new request.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from rag_index.errors import RetrievalError
from tools.registry import python_identifier

EXAMPLES_DIR = Path(__file__).parent / "examples"
_FIELDS = {"id", "request", "files", "plan", "tags", "truth", "context"}


class CookbookError(RetrievalError):
    """A cookbook data file holds a malformed example."""


@dataclass(frozen=True)
class Context:
    """What a follow-up assumes was asked and run before it in the same conversation.

    Attributes
    ----------
    request : str
        The earlier request.
    plan : str
        The earlier plan; the follow-up uses the artifacts it stored.
    """

    request: str
    plan: str


@dataclass(frozen=True)
class Example:
    """One worked example: a request in a biologist's words and the plan that answers it.

    Attributes
    ----------
    id : str
        Unique identifier, ``<theme>-<number>``.
    request : str
        What the user asked.
    files : dict of str to str
        File name -> generator kind (:data:`rag_index.cookbook.data.KINDS`).
    plan : str
        The plan, one statement per line, ending in one ``answer(...)`` or ``reply(...)``.
    tags : tuple of str
        Topic words (``count``, ``border``, ``typo``, ``follow-up``...).
    truth : str or None
        ``"<file>:<key>"``: the generated file's known value the first number among the
        answers is checked against (e.g. ``"cells.tif:count"``).
    context : Context or None
        For follow-ups, the earlier request and plan.
    """

    id: str
    request: str
    files: dict[str, str]
    plan: str
    tags: tuple[str, ...]
    truth: str | None = None
    context: Context | None = None

    @property
    def variables(self) -> dict[str, str]:
        """The variables bound before the plan, with their kind, as the planner lists them.

        The request's files (``{"dapi_03": "image"}`` for ``dapi_03.tif``) and, for a
        follow-up, the earlier artifacts its plan uses: the registry names those after their
        input and output (``field_a_labels`` for labels, ``..._measurements`` or ``..._tracks``
        for tables), so their kind follows from the name. Kinds are ``image``, ``labels`` and
        ``table``.
        """
        from rag_index.cookbook.data import KIND_ARTIFACTS  # imports the generators

        out = {python_identifier(Path(name).stem): KIND_ARTIFACTS.get(kind, "image")
               for name, kind in self.files.items()}
        if self.context is not None:
            tree = ast.parse(self.plan)
            made = {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                    for t in ast.walk(node.targets[0]) if isinstance(t, ast.Name)}
            called = {node.func for node in ast.walk(tree) if isinstance(node, ast.Call)}
            for node in ast.walk(tree):
                if (isinstance(node, ast.Name) and node not in called and node.id not in made
                        and node.id not in out):
                    out[node.id] = "labels" if node.id.endswith("_labels") else "table"
        return out

    @property
    def tools(self) -> tuple[str, ...]:
        """Names of the tools the plan calls, in order (``answer``/``reply`` excluded)."""
        return plan_tools(self.plan)

    def prompt_text(self) -> str:
        """The example as a prompt shows it: variables, (earlier request,) request, plan.

        Examples
        --------
        >>> print(load_examples()[0].prompt_text())  # doctest: +NORMALIZE_WHITESPACE
        Variables: dapi_field1 (image)
        Request: I'd like to know the nucleus count of dapi_field1.tif
        labels = segment_objects(image=dapi_field1)
        answer(count(labels))
        """
        listed = ", ".join(f"{var} ({kind})" for var, kind in self.variables.items())
        lines = [f"Variables: {listed or 'none'}"]
        if self.context is not None:
            lines += [f"Earlier request: {self.context.request}", self.context.plan]
        return "\n".join([*lines, f"Request: {self.request}", self.plan])


def plan_tools(plan: str) -> tuple[str, ...]:
    """Tool names called by a plan, in order of their lines.

    Parameters
    ----------
    plan : str
        Plan text.

    Returns
    -------
    tuple of str
        Called names other than the final ``answer``/``reply``.

    Examples
    --------
    >>> plan_tools("labels = segment_objects(image=a)\\nanswer(count(labels))")
    ('segment_objects',)
    """
    names = []
    for node in ast.parse(plan).body:
        value = node.value if isinstance(node, (ast.Assign, ast.Expr)) else None
        if (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id not in ("answer", "reply")
        ):
            names.append(value.func.id)
    return tuple(names)


def _record(raw: object, source: Path) -> Example:
    if not isinstance(raw, dict):
        raise CookbookError(f"{source.name}: every example must be a mapping, got {raw!r}")
    where = f"{source.name}: example {raw.get('id', '?')!r}"
    unknown = set(raw) - _FIELDS
    missing = {"id", "request", "files", "plan", "tags"} - set(raw)
    if unknown or missing:
        raise CookbookError(f"{where}: unknown fields {sorted(unknown)}, missing {sorted(missing)}")
    files = raw["files"]
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise CookbookError(f"{where}: files must map file names to generator kinds")
    context = raw.get("context")
    if context is not None:
        if not isinstance(context, dict) or set(context) != {"request", "plan"}:
            raise CookbookError(f"{where}: context must have exactly 'request' and 'plan'")
        context = Context(str(context["request"]), str(context["plan"]).strip())
    try:
        ast.parse(raw["plan"])
    except SyntaxError as exc:
        raise CookbookError(f"{where}: plan is not valid Python syntax: {exc}") from exc
    return Example(
        id=str(raw["id"]),
        request=str(raw["request"]).strip(),
        files=dict(files),
        plan=str(raw["plan"]).strip(),
        tags=tuple(str(t) for t in raw["tags"]),
        truth=raw.get("truth"),
        context=context,
    )


@functools.cache
def load_examples(folder: Path = EXAMPLES_DIR) -> tuple[Example, ...]:
    """Every example of the cookbook, in file and record order.

    Parameters
    ----------
    folder : Path
        Folder of ``*.yaml`` files; the bundled one by default.

    Returns
    -------
    tuple of Example

    Raises
    ------
    CookbookError
        If a record is malformed or two records share an id.

    Examples
    --------
    >>> len(load_examples()) >= 120
    True
    """
    examples: list[Example] = []
    for path in sorted(Path(folder).glob("*.yaml")):
        records = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        if not isinstance(records, list):
            raise CookbookError(f"{path.name}: the file must hold a list of examples")
        examples.extend(_record(raw, path) for raw in records)
    seen: set[str] = set()
    for ex in examples:
        if ex.id in seen:
            raise CookbookError(f"two examples have the id {ex.id!r}")
        seen.add(ex.id)
    return tuple(examples)


def search(request: str, *, k: int = 3) -> list[Example]:
    """The ``k`` worked examples whose requests are most like ``request``.

    Parameters
    ----------
    request : str
        The user's request.
    k : int
        How many examples to return (at least 1).

    Returns
    -------
    list of Example
        Best first.

    Examples
    --------
    >>> [ex.tools for ex in search("how many nuclei in a.tif, not touching the edge", k=1)]
    [('segment_objects', 'remove_border_objects')]
    """
    from rag_index.cookbook.retrieval import default_retriever

    return default_retriever().search(request, k=k)


__all__ = [
    "Context",
    "CookbookError",
    "Example",
    "load_examples",
    "plan_tools",
    "search",
]


"""Read the parts of a numpydoc docstring the registry needs.

Only what a tool's docstring must contain is parsed: the summary line, the extended
description, and the ``Parameters`` and ``Returns`` sections. A small parser keeps the registry
free of a dependency that would only be used for this.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

_SECTION_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")
_ENTRY = re.compile(r"^(?P<name>[A-Za-z_*][\w, *]*?)\s*(?::\s*(?P<type>.*))?$")


@dataclass
class DocEntry:
    """One entry of a ``Parameters`` or ``Returns`` section."""

    name: str
    type: str
    description: str


@dataclass
class Docstring:
    """The parsed parts of a numpydoc docstring."""

    summary: str
    extended: str
    parameters: dict[str, DocEntry] = field(default_factory=dict)
    returns: list[DocEntry] = field(default_factory=list)


def _split_sections(lines: list[str]) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {"": []}
    current = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        is_header = (
            i + 1 < len(lines)
            and line.strip()
            and _SECTION_UNDERLINE.match(lines[i + 1])
            and not line.startswith(" ")
        )
        if is_header:
            current = line.strip()
            sections[current] = []
            i += 2
            continue
        sections[current].append(line)
        i += 1
    return sections


def _parse_entries(lines: list[str]) -> list[DocEntry]:
    entries: list[DocEntry] = []
    for line in lines:
        if not line.strip():
            if entries:
                entries[-1].description += "\n"
            continue
        if not line.startswith((" ", "\t")):
            match = _ENTRY.match(line.strip())
            name = match.group("name").strip() if match else line.strip()
            type_ = (match.group("type") or "").strip() if match else ""
            entries.append(DocEntry(name=name, type=type_, description=""))
        elif entries:
            entries[-1].description += line.strip() + " "
    for entry in entries:
        paragraphs = [" ".join(p.split()) for p in entry.description.split("\n")]
        entry.description = "\n".join(p for p in paragraphs if p)
    return entries


def parse_docstring(obj: object) -> Docstring:
    """Parse the numpydoc docstring of ``obj``.

    Parameters
    ----------
    obj : object
        A function (or anything with a docstring).

    Returns
    -------
    Docstring
        Summary, extended description and the documented parameters and returns. Parameters
        documented together (``a, b : int``) get one entry each.
    """
    text = inspect.getdoc(obj) or ""
    sections = _split_sections(text.splitlines())
    intro = "\n".join(sections.get("", [])).strip()
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", intro) if p.strip()]
    summary = " ".join(paragraphs[0].split()) if paragraphs else ""
    extended = "\n\n".join(" ".join(p.split()) for p in paragraphs[1:])
    parameters: dict[str, DocEntry] = {}
    for entry in _parse_entries(sections.get("Parameters", [])):
        for name in (n.strip() for n in entry.name.split(",")):
            if name:
                parameters[name] = DocEntry(name, entry.type, entry.description)
    returns = _parse_entries(sections.get("Returns", []))
    return Docstring(summary, extended, parameters, returns)

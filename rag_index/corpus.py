"""What the index holds: tool cards, the project's how-to notes, and library docstrings.

The corpus is read in *groups*, the unit by which the index is updated: all tool cards form one
group, each note file is a group, and each library is a group keyed by its installed version.
:func:`group_keys` tells what every group is at now, cheaply (hashes and version numbers, no
imports of the libraries); :func:`read_group` produces a group's chunks.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag_index.chunks import Chunk

log = logging.getLogger(__name__)

#: Bump when chunking changes so that every group is rebuilt.
CHUNKER_VERSION = "3"
#: Longest chunk, in characters; MiniLM reads about 256 word pieces (~1,000 characters).
MAX_CHARS = 1200
NOTES_DIR = Path(__file__).parent / "notes"


@dataclass(frozen=True)
class PackageSpec:
    """A library whose public docstrings go into the index.

    Attributes
    ----------
    dist : str
        Distribution name, for its version (``scikit-image``).
    modules : tuple of str
        Modules whose public functions and classes are read, canonical paths first.
    methods : bool
        Also read the public methods of the classes found (for class-based APIs).
    """

    dist: str
    modules: tuple[str, ...]
    methods: bool = False

    @property
    def roots(self) -> tuple[str, ...]:
        return tuple(sorted({m.split(".")[0] for m in self.modules}))


PACKAGES: tuple[PackageSpec, ...] = (
    PackageSpec(
        "scikit-image",
        tuple(
            f"skimage.{m}"
            for m in (
                "filters", "filters.rank", "morphology", "measure", "segmentation", "feature",
                "restoration", "exposure", "transform", "util", "color", "metrics",
                "registration", "io", "draw", "graph",
            )
        ),
    ),
    PackageSpec("pyclesperanto-prototype", ("pyclesperanto_prototype",)),
    PackageSpec("stardist", ("stardist.models", "stardist.matching", "stardist"), methods=True),
    PackageSpec(
        "csbdeep",
        ("csbdeep.utils", "csbdeep.models", "csbdeep.data", "csbdeep.io"),
        methods=True,
    ),
    PackageSpec(
        "laptrack",
        ("laptrack", "laptrack.scores", "laptrack.data_conversion"),
        methods=True,
    ),
    PackageSpec("scipy", ("scipy.ndimage",)),
)


# -- groups -----------------------------------------------------------------------------------


def _sha(text: str | bytes) -> str:
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()[:16]


def note_files(notes_dir: Path = NOTES_DIR) -> list[Path]:
    """The how-to notes, sorted by name."""
    return sorted(p for p in Path(notes_dir).glob("*.md") if p.is_file())


def load_tools() -> Any:
    """Import every tool module and return the registry, tolerating modules that fail.

    :func:`tools.load_all` with ``strict=False``: a module that fails to import is warned about
    and skipped, so that one broken tool does not keep the rest out of the index.
    """
    import tools

    return tools.load_all(strict=False)


def group_keys(
    *,
    packages: Sequence[PackageSpec] = PACKAGES,
    notes_dir: Path = NOTES_DIR,
    include_tools: bool = True,
    registry: Any = None,
) -> dict[str, str]:
    """What each group of the corpus is now: a key that changes when its content changes.

    Parameters
    ----------
    packages : sequence of PackageSpec
        Libraries to read docstrings from; those not installed are left out.
    notes_dir : Path
        Folder of the ``*.md`` how-to notes.
    include_tools : bool
        Include the registry's tool cards (imports the tool modules).
    registry : Registry, optional
        Where the tools are; all of :mod:`tools` (see :func:`load_tools`) if None.

    Returns
    -------
    dict
        Group name -> key.
    """
    keys: dict[str, str] = {}
    if include_tools:
        registry = registry if registry is not None else load_tools()
        keys["tools"] = _sha(CHUNKER_VERSION + "".join(t.card() for t in registry))
    for path in note_files(notes_dir):
        keys[f"note:{path.stem}"] = _sha(CHUNKER_VERSION.encode() + path.read_bytes())
    for spec in packages:
        try:
            version = importlib.metadata.version(spec.dist)
        except importlib.metadata.PackageNotFoundError:
            log.info("%s is not installed; its docstrings are not indexed", spec.dist)
            continue
        keys[f"pkg:{spec.dist}"] = _sha(f"{CHUNKER_VERSION}|{version}|{spec}")
    return keys


def read_group(
    group: str,
    *,
    packages: Sequence[PackageSpec] = PACKAGES,
    notes_dir: Path = NOTES_DIR,
    registry: Any = None,
) -> list[Chunk]:
    """The chunks of one group named as in :func:`group_keys`."""
    if group == "tools":
        return tool_chunks(registry)
    if group.startswith("note:"):
        return note_chunks(Path(notes_dir) / f"{group[5:]}.md")
    if group.startswith("pkg:"):
        spec = next((s for s in packages if s.dist == group[4:]), None)
        if spec is None:
            raise KeyError(f"no package spec for group {group!r}")
        return api_chunks(spec)
    raise KeyError(f"unknown corpus group {group!r}")


# -- splitting long text ----------------------------------------------------------------------


def split_text(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    """Split text into pieces of at most ``max_chars``, at paragraph, line or word boundaries."""
    text = text.strip()
    if len(text) <= max_chars:
        return [text] if text else []
    pieces: list[str] = []
    current = ""
    for para in re.split(r"\n\s*\n", text):
        candidate = f"{current}\n\n{para}" if current else para
        if len(candidate) <= max_chars:
            current = candidate
            continue
        if current:
            pieces.append(current)
        while len(para) > max_chars:
            cut = para.rfind("\n", 0, max_chars)
            if cut < max_chars // 3:
                cut = para.rfind(" ", 0, max_chars)
            if cut < max_chars // 3:
                cut = max_chars
            pieces.append(para[:cut].rstrip())
            para = para[cut:].lstrip()
        current = para
    if current.strip():
        pieces.append(current)
    return pieces


def _numbered(base_id: str, parts: list[str]) -> Iterator[tuple[str, str]]:
    for i, part in enumerate(parts):
        yield (base_id if i == 0 else f"{base_id}~{i + 1}"), part


# -- tool cards -------------------------------------------------------------------------------


def tool_chunks(registry: Any = None) -> list[Chunk]:
    """One chunk per registered tool: its card (all of :mod:`tools` if ``registry`` is None)."""
    registry = registry if registry is not None else load_tools()
    chunks = []
    for t in registry:
        for cid, part in _numbered(f"tool:{t.name}", split_text(t.card(), 2 * MAX_CHARS)):
            chunks.append(
                Chunk(cid, part, f"tool:{t.name}", "tool", f"{t.name} ({t.category})", "tools")
            )
    return chunks


# -- notes ------------------------------------------------------------------------------------

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def slugify(text: str) -> str:
    """A lower-case, hyphenated id for a heading or file name."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "section"


def _sections(lines: list[str], *, honour_fences: bool) -> list[tuple[int, str, list[str]]]:
    sections: list[tuple[int, str, list[str]]] = [(0, "", [])]
    in_fence = False
    for line in lines:
        if honour_fences and _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            sections.append((len(match.group(1)), match.group(2).strip(), []))
        else:
            sections[-1][2].append(line)
    return sections


def parse_note(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Split a markdown note into its title and ``(heading, body)`` sections.

    Tolerates broken markdown: a code fence left open makes the parser retry without fences
    (so later headings still split), and a note without headings is one section.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    fences = sum(bool(_FENCE.match(line)) for line in lines)
    sections = _sections(lines, honour_fences=fences % 2 == 0)
    title = ""
    out: list[tuple[str, str]] = []
    for level, heading, body in sections:
        if level == 1 and not title:
            title = heading
            heading = ""
        content = "\n".join(body).strip()
        if not content and not heading:
            continue
        out.append((heading, content))
    return title, out


def note_chunks(path: Path) -> list[Chunk]:
    """The chunks of one note: one per section, long sections split, each titled."""
    slug = slugify(path.stem)
    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="replace")
    title, sections = parse_note(text)
    title = title or path.stem.replace("-", " ").replace("_", " ")
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for heading, body in sections:
        anchor = slugify(heading) if heading else "intro"
        base, n = anchor, 2
        while anchor in seen:
            anchor, n = f"{base}-{n}", n + 1
        seen.add(anchor)
        label = f"{title} — {heading}" if heading else title
        parts = split_text(body) or [""]
        for cid, part in _numbered(f"note:{slug}#{anchor}", parts):
            chunks.append(
                Chunk(cid, f"{label}\n{part}".strip(), f"note:{slug}", "note", label,
                      f"note:{path.stem}")
            )
    return chunks


# -- library docstrings -----------------------------------------------------------------------

_NUMPYDOC_HEADER = re.compile(r"^([A-Z][A-Za-z ]+)\n-{3,}\s*$", re.MULTILINE)
_DROPPED_SECTIONS = {"References"}
_EXAMPLES_CHARS = 700


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def render_signature(obj: Any) -> str:
    """Parameter names and defaults without annotations: readable, and short for embedding."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return "(...)"
    parts = []
    for p in sig.parameters.values():
        if inspect.isclass(obj) and p.name == "self":
            continue
        prefix = "*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else ""
        default = "" if p.default is p.empty else f"={_short_repr(p.default)}"
        parts.append(f"{prefix}{p.name}{default}")
    text = ", ".join(parts)
    return f"({text if len(text) <= 400 else text[:397] + '...'})"


def split_docstring(doc: str) -> list[str]:
    """Split a numpydoc docstring into sections, dropping references and trimming examples."""
    bounds = [m.start() for m in _NUMPYDOC_HEADER.finditer(doc)]
    starts = [0, *bounds]
    sections = []
    for start, end in zip(starts, [*bounds, len(doc)], strict=True):
        section = doc[start:end].strip()
        header = section.split("\n", 1)[0].strip()
        if header in _DROPPED_SECTIONS or not section:
            continue
        if header == "Examples" and len(section) > _EXAMPLES_CHARS:
            section = section[:_EXAMPLES_CHARS].rsplit("\n", 1)[0] + "\n..."
        sections.append(section)
    return sections


def docstring_chunks(qualname: str, obj: Any, group: str) -> list[Chunk]:
    """Chunks of one function or class: the signature heads every piece of its docstring."""
    doc = inspect.getdoc(obj)
    if not doc or not doc.strip():
        return []
    kind_word = "class " if inspect.isclass(obj) else ""
    header = f"{kind_word}{qualname}{render_signature(obj)}"
    budget = max(MAX_CHARS - len(header) - 1, 400)
    pieces: list[str] = []
    current = ""
    for section in split_docstring(doc):
        for part in split_text(section, budget):
            if current and len(current) + len(part) + 2 > budget:
                pieces.append(current)
                current = part
            else:
                current = f"{current}\n\n{part}" if current else part
    if current:
        pieces.append(current)
    summary = doc.strip().split("\n", 1)[0][:100]
    return [
        Chunk(cid, f"{header}\n{part}", f"api:{qualname}", "api", f"{qualname}: {summary}", group)
        for cid, part in _numbered(f"api:{qualname}", pieces)
    ]


def _public_members(module: Any, roots: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    names = getattr(module, "__all__", None) or dir(module)
    for name in names:
        if name.startswith("_"):
            continue
        obj = getattr(module, name, None)
        if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.isbuiltin(obj)):
            continue
        home = getattr(obj, "__module__", "") or ""
        if home.split(".")[0] not in roots:
            continue  # re-exported from another library (numpy, typing...)
        yield name, obj


def _is_routine(obj: Any) -> bool:
    return inspect.isfunction(obj) or inspect.ismethod(obj)


def _canonical(obj: Any, places: list[tuple[str, str]]) -> tuple[str, str]:
    """Of the ``(module, name)`` places an object is exported, the one its own name and module
    point to: ``skimage.measure.label`` rather than the alias ``skimage.morphology.label``."""
    own_name = getattr(obj, "__name__", "")
    home = getattr(obj, "__module__", "") or ""

    def rank(item: tuple[int, tuple[str, str]]) -> tuple[bool, int, int]:
        order, (module_name, name) = item
        inside = home == module_name or home.startswith(module_name + ".")
        return (name != own_name, -len(module_name) if inside else 0, order)

    return min(enumerate(places), key=rank)[1]


def api_chunks(spec: PackageSpec) -> list[Chunk]:
    """The docstring chunks of one library's public functions and classes.

    An object exported under several names is indexed once, under its canonical name, with its
    aliases listed so that a keyword search for an alias still finds it.
    """
    group = f"pkg:{spec.dist}"
    places: dict[int, list[tuple[str, str]]] = {}
    objects: dict[int, Any] = {}
    for module_name in spec.modules:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # an optional library may be broken; index the rest
            log.warning("cannot import %s: %s", module_name, exc)
            continue
        for name, obj in _public_members(module, spec.roots):
            objects.setdefault(id(obj), obj)
            places.setdefault(id(obj), []).append((module_name, name))
    chunks: list[Chunk] = []
    done_methods: set[int] = set()
    for key, obj in objects.items():
        module_name, name = _canonical(obj, places[key])
        qualname = f"{module_name}.{name}"
        aliases = [f"{m}.{n}" for m, n in places[key] if f"{m}.{n}" != qualname]
        found = docstring_chunks(qualname, obj, group)
        if found and aliases:
            first = found[0]
            note = "\n(also available as " + ", ".join(aliases[:5]) + ")"
            found[0] = Chunk(first.id, first.text + note, first.source, first.kind, first.title,
                             first.group)
        chunks.extend(found)
        if spec.methods and inspect.isclass(obj):
            for mname, member in inspect.getmembers(obj, _is_routine):
                func = getattr(member, "__func__", member)  # classmethods: the function
                home = getattr(func, "__module__", "") or ""
                if mname.startswith("_") or id(func) in done_methods:
                    continue
                if home.split(".")[0] not in spec.roots:
                    continue
                done_methods.add(id(func))
                chunks.extend(docstring_chunks(f"{qualname}.{mname}", member, group))
    return chunks

"""The house's layout: imports point one way, every tool module is loaded, tools are documented.

Arrows: ui/CLI -> agent -> (rag_index, tools); evals -> (agent, rag_index, tools). A lower package
never imports a higher one, not even inside a function or through ``importlib``.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tools
from tools import load_all, tool_modules

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "tools": {"agent", "rag_index", "evals", "ui"},
    "rag_index": {"agent", "evals", "ui"},
    "agent": {"evals", "ui"},
}


def _imported_packages(path: Path) -> set[tuple[int, str]]:
    """(line, top-level package) of every import in a file, lazy and ``importlib`` ones too."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {(node.lineno, alias.name.split(".")[0]) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.lineno, node.module.split(".")[0]))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add((node.lineno, node.args[0].value.split(".")[0]))
    return found


def test_imports_point_one_way() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {package}"
        for low, higher in FORBIDDEN.items()
        for path in sorted((ROOT / low).rglob("*.py"))
        for line, package in sorted(_imported_packages(path))
        if package in higher
    ]
    assert wrong == []


def test_import_checker_sees_lazy_and_importlib_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import importlib\n"
        "def f():\n"
        "    from evals.toolbench import results\n"
        "    return importlib.import_module('agent.loop')\n"
    )
    packages = {p for _, p in _imported_packages(source)}
    assert {"evals", "agent", "importlib"} <= packages


def _registered_in_fresh_process(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport json, tools.registry as r\n"
         "print(json.dumps(sorted(r.REGISTRY.tools)))"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_load_all_registers_what_importing_every_module_registers() -> None:
    # Import every module of the package, tool module or not: what registers is the truth the
    # loader's source scan must match.
    every_module = (
        "import importlib, pathlib, tools\n"
        "root = pathlib.Path(tools.__file__).parent\n"
        "for p in sorted(root.rglob('*.py')):\n"
        "    parts = list(p.relative_to(root).with_suffix('').parts)\n"
        "    if parts[-1] == '__init__': parts.pop()\n"
        "    importlib.import_module('.'.join(['tools', *parts]))\n"
    )
    everything = _registered_in_fresh_process(every_module)
    loaded = _registered_in_fresh_process("import tools; tools.load_all()")
    assert len(everything) > 20
    assert loaded == everything


def test_loader_finds_a_new_module_without_an_edit(tmp_path: Path) -> None:
    package = tmp_path / "fakepkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "plain.py").write_text("def f():\n    return '@tool in a string only'\n")
    (package / "bare.py").write_text("from tools import tool\n@tool\ndef g(): ...\n")
    (package / "sub" / "deep.py").write_text(
        "from tools.registry import tool\n@tool(category='x')\ndef h(): ...\n"
    )
    assert tool_modules(package, "fakepkg") == ["fakepkg.bare", "fakepkg.sub.deep"]


def test_loader_knows_the_modules_that_register_tools() -> None:
    names = tool_modules()
    # the ones the old hand-written list missed, and none of the helpers
    assert {"tools.tiling", "tools.stardist_segment", "tools.filters"} <= set(names)
    assert not {"tools.registry", "tools.workspace", "tools.types"} & set(names)


def test_a_broken_tool_module_is_a_warning_when_not_strict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken_tools_module.py"
    broken.write_text(
        "from tools import tool\nraise RuntimeError('cannot load')\n@tool\ndef x(): ...\n"
    )
    monkeypatch.setattr(tools, "tool_modules", lambda: ["broken_tools_module"])
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RuntimeError, match="cannot load"):
        load_all()
    with pytest.warns(UserWarning, match="broken_tools_module failed to import"):
        registry = load_all(strict=False)
    assert registry is tools.REGISTRY


def _examples(func: object) -> str:
    """The Examples section of a numpydoc docstring ('' when there is none)."""
    doc = inspect.getdoc(func) or ""
    match = re.search(r"^Examples\n-{3,}\n(.*?)(?=^\S[^\n]*\n-{3,}\n|\Z)", doc, re.M | re.S)
    return match.group(1) if match else ""


def test_every_registered_tool_has_an_example_that_calls_it() -> None:
    # The examples run as doctests (pyproject: --doctest-modules over tools/).
    missing = [
        f"{t.func.__module__}.{t.func.__name__}"
        for t in load_all()
        if not re.search(rf">>> .*\b{t.func.__name__}\(", _examples(t.func))
    ]
    assert missing == []


def test_the_examples_check_reads_the_section() -> None:
    def documented() -> None:
        """Do it.

        Examples
        --------
        >>> documented()

        Notes
        -----
        >>> other()
        """

    assert ">>> documented()" in _examples(documented)
    assert "other" not in _examples(documented)
    assert _examples(test_the_examples_check_reads_the_section) == ""

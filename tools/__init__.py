"""bia's analysis tools: plain typed functions, registered for the agent by ``@tool``.

Import :func:`load_all` to register every tool module; each module can also be imported alone.
"""

from __future__ import annotations

import ast
import importlib
import warnings
from pathlib import Path

from tools.registry import REGISTRY, Registry, get_tool, tool

__all__ = ["REGISTRY", "Registry", "get_tool", "load_all", "tool", "tool_modules"]

_ROOT = Path(__file__).parent


def _registers_tools(source: str) -> bool:
    """Whether a module's source decorates a function with ``@tool`` or ``@tool(...)``."""
    if "@tool" not in source:  # cheap test first; most modules are ruled out here
        return False
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(target, ast.Name) and target.id == "tool":
                    return True
    return False


def tool_modules(root: Path | None = None, package: str = "tools") -> list[str]:
    """The modules of the package that register tools, found by reading their source.

    Every ``.py`` file below ``root`` (sub-packages included) that decorates a function with
    ``@tool`` counts, so a new tool module is loaded without editing a list.

    Parameters
    ----------
    root : Path, optional
        The package folder; this package's by default.
    package : str
        The package's import name.

    Returns
    -------
    list of str
        Dotted module names, sorted (the order their tools are registered in).

    Examples
    --------
    >>> "tools.filters" in tool_modules()
    True
    >>> "tools.registry" in tool_modules()
    False
    """
    root = _ROOT if root is None else Path(root)
    names = []
    for path in sorted(root.rglob("*.py")):
        if not _registers_tools(path.read_text(encoding="utf-8")):
            continue
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join([package, *parts]))
    return names


def load_all(*, strict: bool = True) -> Registry:
    """Import every module that registers tools, and return the registry.

    Parameters
    ----------
    strict : bool
        Raise when a tool module fails to import. With ``strict=False`` the failure is a
        warning naming the module and the other modules still load (what the agent and the
        documentation index use, so that one broken tool does not take the rest down).

    Returns
    -------
    Registry
        :data:`tools.registry.REGISTRY` with the tools of every importable module.

    Examples
    --------
    >>> registry = load_all()
    >>> "gaussian_blur" in registry
    True
    """
    for name in tool_modules():
        try:
            importlib.import_module(name)
        except Exception as exc:
            if strict:
                raise
            warnings.warn(f"tool module {name} failed to import: {exc!r}", stacklevel=2)
    return REGISTRY

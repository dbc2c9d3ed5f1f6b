"""bia's analysis tools: plain typed functions, registered for the agent by ``@tool``.

Import :func:`load_all` to register every tool module; each module can also be imported alone.
"""

from __future__ import annotations

import importlib
import pkgutil

from tools.registry import REGISTRY, Registry, get_tool, tool

__all__ = ["REGISTRY", "Registry", "get_tool", "load_all", "tool"]

_NOT_TOOLS = {"registry", "workspace", "types", "errors", "docstrings", "checks", "io"}


def load_all() -> Registry:
    """Import every tool module so that all tools are registered, and return the registry."""
    for info in pkgutil.iter_modules(__path__):
        if info.name not in _NOT_TOOLS and not info.name.startswith("_"):
            importlib.import_module(f"tools.{info.name}")
    return REGISTRY

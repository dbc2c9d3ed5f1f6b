"""The tool modules the agent offers, imported on demand.

Importing a module of :mod:`tools` registers its tools into :data:`tools.registry.REGISTRY`.
Modules not written yet are skipped, so the agent runs with whatever tools exist; a module that
exists but fails to import is reported, not hidden.
"""

from __future__ import annotations

import importlib
import warnings

from tools.registry import REGISTRY, Registry

TOOL_MODULES: tuple[str, ...] = (
    "tools.io",
    "tools.synthetic",
    "tools.filters",
    "tools.denoise",
    "tools.segment",
    "tools.detect",
    "tools.measure",
    "tools.track",
    "tools.surface",
    "tools.quality",
    "tools.compare",
)
"""Modules whose import registers tools, in the order their tools are shown to a model."""


def load_registry(modules: tuple[str, ...] = TOOL_MODULES) -> Registry:
    """Import the tool modules and return the global registry.

    ``tools.load_all()`` imports every module of the package; if one of them fails, the known
    ``modules`` are imported one by one and the broken one is reported and skipped.

    Returns
    -------
    Registry
        :data:`tools.registry.REGISTRY` with every available tool registered.
    """
    try:
        import tools

        return tools.load_all()  # every module of the package, when all of them import
    except Exception as exc:  # fall back to the known list, skipping the broken module
        warnings.warn(f"tools.load_all() failed ({exc!r}); loading known modules", stacklevel=2)
    for name in modules:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # not written yet
            warnings.warn(f"tool module {name} could not be imported: {exc}", stacklevel=2)
        except Exception as exc:  # a broken module must not take the whole agent down
            warnings.warn(f"tool module {name} failed to import: {exc!r}", stacklevel=2)
    return REGISTRY

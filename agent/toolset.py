"""The agent's tools: every tool module of :mod:`tools`, through its one loader.

:func:`tools.load_all` finds the modules that register tools by reading the package; this name
stays for the callers that import it from here.
"""

from __future__ import annotations

from tools import load_all
from tools.registry import Registry


def load_registry() -> Registry:
    """Every importable tool module's tools; a module that fails to import is warned about.

    Returns
    -------
    Registry
        :data:`tools.registry.REGISTRY` with every available tool registered.
    """
    return load_all(strict=False)

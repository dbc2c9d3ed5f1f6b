"""Values a tool chose by itself, with the reason, so that results say how they were made.

A tool that fills a parameter the caller left out (a smoothing width estimated from the image, a
method picked for the image) calls :func:`record_choice`. :meth:`tools.registry.Tool.run`
collects the choices made during one run into :attr:`~tools.registry.ToolResult.choices`, stores
them in the output's provenance and writes them as a comment after the call in the exported
script; the agent phrases its answer's method from them. A direct call of the function (no
registry) logs each choice at INFO on the ``tools.choices`` logger and prints nothing.

Examples
--------
>>> from tools.choices import collect_choices, record_choice
>>> with collect_choices() as chosen:
...     record_choice("spot_sigma", 3.1, "estimated: objects about 14 px across")
>>> chosen
{'spot_sigma': {'value': 3.1, 'reason': 'estimated: objects about 14 px across'}}
>>> format_choices(chosen)
'spot_sigma=3.1 (estimated: objects about 14 px across)'
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

Choices = dict[str, dict[str, Any]]
"""``{parameter: {"value": v, "reason": "..."}}``, in the order the choices were made."""

_ACTIVE: ContextVar[Choices | None] = ContextVar("bia_tool_choices", default=None)


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of ``value``: numpy scalars become Python numbers, floats rounded."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return float(f"{value:.3g}") if np.isfinite(value) else value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def record_choice(parameter: str, value: Any, reason: str) -> None:
    """Report a value a tool chose itself (the caller gave none), and why.

    Parameters
    ----------
    parameter : str
        The parameter's name, e.g. ``"spot_sigma"``, or ``"method"`` for a method choice.
    value : object
        The chosen value (a number, a string, a short list); floats are kept to 3 digits.
    reason : str
        Why, in a few words a person can read: ``"estimated: objects about 14 px across"``.

    Examples
    --------
    >>> record_choice("sigma", 1.5, "estimated: objects about 8 px across")  # logs at INFO
    """
    plain = _plain(value)
    store = _ACTIVE.get()
    if store is not None:
        store[str(parameter)] = {"value": plain, "reason": str(reason)}
    logger.info("%s = %r (%s)", parameter, plain, reason)


@contextlib.contextmanager
def collect_choices() -> Iterator[Choices]:
    """Collect the :func:`record_choice` calls made inside the ``with`` block.

    Nested blocks each see their own calls only (the outer block does not get the inner
    block's), which is how one tool run's choices stay apart from another's.

    Yields
    ------
    dict
        Filled as choices are recorded: ``{parameter: {"value": v, "reason": "..."}}``.

    Examples
    --------
    >>> with collect_choices() as chosen:
    ...     record_choice("method", "threshold", "objects are apart")
    >>> chosen["method"]["value"]
    'threshold'
    """
    store: Choices = {}
    token = _ACTIVE.set(store)
    try:
        yield store
    finally:
        _ACTIVE.reset(token)


def format_choices(choices: Mapping[str, Mapping[str, Any]] | None) -> str:
    """One line of text for a set of choices, e.g. for a script comment or a summary.

    Parameters
    ----------
    choices : dict or None
        As collected by :func:`collect_choices`.

    Returns
    -------
    str
        ``"spot_sigma=3.1 (estimated: ...); outline_sigma=1.5 (...)"``; empty when none.

    Examples
    --------
    >>> format_choices({"sigma": {"value": 2.0, "reason": "estimated"}})
    'sigma=2.0 (estimated)'
    """
    if not choices:
        return ""
    return "; ".join(f"{name}={c.get('value')!r} ({c.get('reason', '')})"
                     for name, c in choices.items())

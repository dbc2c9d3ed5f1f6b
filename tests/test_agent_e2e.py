"""End to end: the real embedded model picks tools and arguments; results match ground truth.

Needs llama-cpp-python and the fetched default weights (``make test`` installs and fetches both);
skipped, with the reason, only where either is missing. One case is marked as a known failure of
the default model (measured with ``python -m agent.trial``): it is run and reported, and an
unexpected pass shows up as XPASS.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from agent import weights
from agent.trial import CASES, run_trial

pytestmark = pytest.mark.slow

SIZE = weights.DEFAULT_SIZE


def _missing() -> str | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (pip install -e '.[llm]')"
    if not weights.is_verified(SIZE):
        return (f"embedded model weights not fetched: python -m agent.weights fetch --size "
                f"{SIZE}")
    return None


@pytest.fixture(scope="module")
def embedded():
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from agent.backends import embedded_chat_model

    return embedded_chat_model(SIZE, progress=False)


@pytest.fixture(scope="module")
def results(embedded, tmp_path_factory) -> dict[str, dict]:
    model, info = embedded
    out = run_trial(model, info, outdir=tmp_path_factory.mktemp("trial"))
    return {r["case"]: r for r in out}


KNOWN_FAILURES = {
    "two tools": "measured: the 1.5B model stops after stardist_segment without measuring",
}


@pytest.mark.parametrize("case", [
    pytest.param(c.name, marks=pytest.mark.xfail(reason=KNOWN_FAILURES[c.name], strict=False))
    if c.name in KNOWN_FAILURES else c.name
    for c in CASES
])
def test_embedded_model_picks_the_right_tools_and_arguments(results, case: str) -> None:
    result = results[case]
    assert result["ok"], result


def test_embedded_model_records_its_file_hash(embedded) -> None:
    _, info = embedded
    assert info.sha256 == weights.model_spec(SIZE).sha256
    assert Path(info.file).is_file()

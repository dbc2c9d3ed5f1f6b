"""Every single-image tool survives degenerate input: a correct result or an error naming it.

A property-based test over the whole registry: for each registered tool that takes one image,
hypothesis draws a degenerate input (NaN, inf, constant, 1x1, 1x500, bool, RGB, 4D, negative
int32, garbage / empty / truncated TIFF files, and ordinary small images) and values for the
tool's parameters from its own schema (bounds, enums, optional values), runs the tool through
the registry as an agent would, and checks the outcome: either outputs of the right kind and
shape with finite values, or a bia error (InputError, ImageFileError, ToolCallError) whose
message names the problem. NaN or inf in the input must be reported, never turned into NaN
output or zero objects.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tools
from tools.errors import BiaError, ImageFileError, InputError, ToolCallError
from tools.workspace import Workspace

REGISTRY = tools.load_all()

# Tools that train a network or need a model folder: their input checks are tested elsewhere,
# a training run per example would take minutes.
SLOW_OR_EXTERNAL = {"denoise_n2v", "apply_care_model"}


def _single_image_tools() -> list[str]:
    names = []
    for t in REGISTRY:
        required = [p for p in t.params if p.kind == "artifact" and p.required]
        needs_path = any(p.kind in ("input_path", "output_path") and p.required for p in t.params)
        if (len(required) == 1 and required[0].artifact_kind == "image" and not needs_path
                and t.name not in SLOW_OR_EXTERNAL):
            names.append(t.name)
    return names


TOOLS = _single_image_tools()

_RNG = np.random.default_rng(0)
ARRAYS: dict[str, np.ndarray] = {
    "nan": np.where(_RNG.random((24, 24)) < 0.05, np.nan, _RNG.random((24, 24))),
    "inf": np.where(_RNG.random((24, 24)) < 0.05, np.inf, _RNG.random((24, 24))),
    "constant": np.full((24, 24), 7.0, dtype=np.float32),
    "zeros": np.zeros((16, 16), dtype=np.uint8),
    "1x1": np.array([[3.0]], dtype=np.float32),
    "1x500": _RNG.random((1, 500)).astype(np.float32),
    "bool": _RNG.random((24, 24)) > 0.7,
    "rgb": (_RNG.random((24, 24, 3)) * 255).astype(np.uint8),
    "4d": _RNG.random((2, 2, 12, 12)).astype(np.float32),
    "negative_int32": -(_RNG.integers(0, 1000, (24, 24))).astype(np.int32),
    "uint16": _RNG.integers(0, 4000, (32, 32)).astype(np.uint16),
    "stack": _RNG.random((4, 16, 16)).astype(np.float32),
}
"""In-memory inputs, each added to the workspace as an image artifact."""

FILES = ("garbage.tif", "empty.tif", "truncated.tif")
"""Broken files, given to the tool by path."""

NON_FINITE = ("nan", "inf")

SLOW_CASES = {("rolling_ball_background", "rgb"), ("rolling_ball_background", "1x500")}
"""Cases that finish correctly but slowly (a 50-px ball on 24x3 planes: over a minute); the
ball's cost on planes narrower than the ball is left to the filter's owner."""


def _required_values(tool_name: str) -> dict[str, Any]:
    """The first allowed value of each required plain parameter (e.g. filter_tiled's filter)."""
    tool_ = REGISTRY.get(tool_name)
    schema = tool_.parameters_schema()["properties"]
    return {p.name: schema[p.name]["enum"][0] for p in tool_.params
            if p.kind == "value" and p.required and "enum" in schema.get(p.name, {})}


def _blobs_image() -> np.ndarray:
    from tools.synthetic import blobs

    return blobs(6, shape=(48, 48), radius=(3.0, 5.0), seed=1).image


ARRAYS["blobs"] = _blobs_image()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("degenerate")
    (root / "garbage.tif").write_bytes(b"this is not a TIFF file at all" * 10)
    (root / "empty.tif").write_bytes(b"")
    good = root / "good.tif"
    tifffile.imwrite(good, _RNG.random((64, 64)).astype(np.float32))
    (root / "truncated.tif").write_bytes(good.read_bytes()[:300])
    return root


def _value_strategy(prop: dict[str, Any], required: bool) -> st.SearchStrategy[Any] | None:
    """Values a model may send for one parameter, from its JSON schema; None = leave out."""
    if "enum" in prop:
        return st.sampled_from(prop["enum"])
    kind = prop.get("type")
    if kind in ("number", "integer"):
        low = prop.get("minimum", prop.get("exclusiveMinimum", 0))
        high = prop.get("maximum", prop.get("exclusiveMaximum", low + 12))
        high = min(high, low + 12)  # keep filters small: the point is the input, not speed
        if kind == "integer":
            low_i = int(np.ceil(low)) + (1 if "exclusiveMinimum" in prop else 0)
            return st.integers(low_i, max(low_i, int(high)))
        return st.floats(low, high, exclude_min="exclusiveMinimum" in prop,
                         exclude_max="exclusiveMaximum" in prop, allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    return None


@st.composite
def _arguments(draw: st.DrawFn, tool_name: str) -> dict[str, Any]:
    tool_ = REGISTRY.get(tool_name)
    schema = tool_.parameters_schema()
    args: dict[str, Any] = {}
    for p in tool_.params:
        if p.kind != "value":
            continue
        prop = schema["properties"].get(p.name, {})
        strategy = _value_strategy(prop, p.required)
        if strategy is None or (not p.required and not draw(st.booleans())):
            continue  # the tool's default
        args[p.name] = draw(strategy)
    if tool_name == "threshold_labeling" and args.get("method") == "manual":
        args["threshold"] = draw(st.floats(-1, 2, allow_nan=False))
    elif tool_name == "threshold_labeling":
        args.pop("threshold", None)
    return args


def _check_outcome(tool_name: str, case: str, ws: Workspace, args: dict[str, Any],
                   shape: tuple[int, ...] | None) -> None:
    tool_ = REGISTRY.get(tool_name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = tool_.run(ws, {"image": case if case in FILES else f"in_{case}", **args})
    except (InputError, ImageFileError, ToolCallError) as exc:
        message = str(exc)
        assert message.strip(), f"{tool_name} on {case}: an error without a message"
        if case in NON_FINITE:
            assert "nan" in message.lower() or "inf" in message.lower(), (
                f"{tool_name} on {case}: the error does not name the NaN/inf: {message}")
        if case in FILES:
            assert isinstance(exc, ImageFileError | InputError), message
        return
    except BiaError:
        return  # another typed error a caller can act on (e.g. a model that cannot load)
    assert case not in NON_FINITE, f"{tool_name} accepted an image with {case} values"
    assert case not in FILES, f"{tool_name} read a broken file {case} without an error"
    for name in result.outputs:
        artifact = ws.get(name)
        data = artifact.data
        if artifact.kind in ("image", "labels") and shape is not None and len(shape) in (2, 3):
            assert data.shape == shape, f"{tool_name} on {case}: shape {data.shape} != {shape}"
        if artifact.kind == "image":
            assert np.isfinite(data).all(), f"{tool_name} on {case}: non-finite output"
        if artifact.kind == "labels":
            assert np.issubdtype(data.dtype, np.integer) and data.min() >= 0


@pytest.mark.parametrize("tool_name", TOOLS)
def test_tool_survives_degenerate_input(tool_name: str, folder: Path) -> None:
    cases = [*ARRAYS, *FILES]
    defaults = _required_values(tool_name)
    for case in cases:  # every case once with the tool's defaults ...
        if (tool_name, case) in SLOW_CASES:
            continue
        ws = Workspace([folder], output_root=folder / "out")
        if case in ARRAYS:
            ws.add(f"in_{case}", ARRAYS[case], kind="image")
        _check_outcome(tool_name, case, ws, dict(defaults),
                       ARRAYS[case].shape if case in ARRAYS else None)

    # ... and with parameter values drawn from the tool's schema.
    @settings(max_examples=8, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(case=st.sampled_from(cases), args=_arguments(tool_name))
    def run(case: str, args: dict[str, Any]) -> None:
        assume((tool_name, case) not in SLOW_CASES)
        args = {**defaults, **args}
        ws = Workspace([folder], output_root=folder / "out")
        shape = None
        if case in ARRAYS:
            data = ARRAYS[case]
            shape = data.shape
            ws.add(f"in_{case}", data, kind="image")
        _check_outcome(tool_name, case, ws, args, shape)

    run()


def test_the_registry_has_single_image_tools() -> None:
    # The property test covers these; a loader change that hides them would make it vacuous.
    assert {"denoise_nlm", "segment_tiled", "segment_objects", "estimate_object_scale",
            "voronoi_otsu_labeling", "detect_spots", "stardist_segment"} <= set(TOOLS)


@pytest.mark.parametrize("case", ["1x1", "1x500", "rgb"])
@pytest.mark.parametrize("tool_name", ["denoise_nlm", "denoise_bilateral", "denoise_auto",
                                       "segment_tiled"])
def test_formerly_raw_errors_are_results_or_input_errors(tool_name: str, case: str,
                                                         folder: Path) -> None:
    # The 8 runs that raised raw errors before (ValueError, IndexError from skimage/dask).
    ws = Workspace([folder], output_root=folder / "out")
    ws.add(f"in_{case}", ARRAYS[case], kind="image")
    _check_outcome(tool_name, case, ws, {}, ARRAYS[case].shape)

"""The registry derives schema, validation, cards, snippets and adapters from functions alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import pytest
from annotated_types import Ge, Gt, Interval, Le, Lt

from tools.errors import InputError, PathNotAllowedError, ToolCallError
from tools.registry import Registry, get_tool, tool
from tools.types import Image, ImageMeta, InputPath, Labels, OutputPath, PixelSize, Table
from tools.workspace import Workspace

REG = Registry()


@tool(category="test", registry=REG)
def every_type(
    image: Image,
    count: int,
    ratio: float = 0.5,
    flag: bool = False,
    word: str = "a",
    mode: Literal["fast", "exact"] = "fast",
    maybe: float | None = None,
    sizes: list[int] | None = None,
    spacing: tuple[float, ...] = (1.0, 1.0),
    pair: tuple[float, float] = (0.0, 1.0),
    positive: Annotated[float, Gt(0)] = 1.0,
    nonneg: Annotated[int, Ge(0)] = 0,
    small: Annotated[float, Lt(10)] = 1.0,
    capped: Annotated[int, Le(5)] = 1,
    unit_interval: Annotated[float, Interval(ge=0, le=1)] = 0.5,
    labels: Labels | None = None,
    table: Table | None = None,
    pixel_size: PixelSize | None = None,
) -> float:
    """Exercise every annotation the registry supports.

    A second paragraph that the schema keeps.

    Parameters
    ----------
    image : Image
        An image.
    count : int
        How many, in objects.
    ratio : float
        A ratio.
    flag : bool
        A switch.
    word : str
        A word.
    mode : str
        Speed or exactness.
    maybe : float, optional
        Only when asked for.
    sizes : list of int, optional
        Sizes in pixels.
    spacing : tuple of float
        Spacing per axis.
    pair : tuple of float
        Low and high.
    positive : float
        Strictly positive.
    nonneg : int
        Zero or more.
    small : float
        Below ten.
    capped : int
        At most five.
    unit_interval : float
        Between zero and one.
    labels : Labels, optional
        Labels.
    table : Table, optional
        A table.
    """
    return float(image.mean()) * count + (pixel_size.spacing[0] if pixel_size else 0.0)


@tool(category="test", registry=REG, output_names=("objects", "measurements"))
def two_outputs(image: Image, threshold: float = 0.5) -> tuple[Labels, Table]:
    """Threshold an image and count what is above.

    Parameters
    ----------
    image : Image
        An image.
    threshold : float
        Intensity threshold.

    Returns
    -------
    Labels
        The foreground as one object.
    Table
        One row with the object's size.
    """
    labels = (image > threshold).astype(np.int32)
    return labels, pd.DataFrame({"label": [1], "area_px": [int(labels.sum())]})


def schema_of(func: object) -> dict:
    return get_tool(func).openai_schema()["function"]["parameters"]


def test_schema_types_enums_defaults_and_bounds() -> None:
    props = schema_of(every_type)["properties"]
    assert props["image"]["type"] == "string"
    assert "Name of an image" in props["image"]["description"]
    assert props["count"]["type"] == "integer"
    assert props["ratio"] == {**props["ratio"], "type": "number", "default": 0.5}
    assert props["flag"]["type"] == "boolean"
    assert props["word"]["type"] == "string"
    assert props["mode"]["enum"] == ["fast", "exact"]
    assert props["maybe"]["type"] == "number"  # X | None is shown as X, not as anyOf
    assert "leave it out" in props["maybe"]["description"]
    assert props["sizes"]["type"] == "array" and props["sizes"]["items"]["type"] == "integer"
    assert props["spacing"]["type"] == "array"
    assert props["pair"]["type"] == "array" and len(props["pair"]["prefixItems"]) == 2
    assert props["positive"]["exclusiveMinimum"] == 0
    assert "Must be > 0" in props["positive"]["description"]
    assert props["nonneg"]["minimum"] == 0
    assert props["small"]["exclusiveMaximum"] == 10
    assert props["capped"]["maximum"] == 5
    assert props["unit_interval"]["minimum"] == 0 and props["unit_interval"]["maximum"] == 1
    assert "How many, in objects." in props["count"]["description"]  # units stay in text
    assert "Name of a label image" in props["labels"]["description"]
    assert "CSV" in props["table"]["description"]


def test_schema_required_hidden_and_closed() -> None:
    schema = schema_of(every_type)
    assert sorted(schema["required"]) == ["count", "image"]
    assert "pixel_size" not in schema["properties"]  # filled from the image, never by a model
    assert schema["additionalProperties"] is False
    text = json.dumps(schema)
    assert "$ref" not in text and "title" not in text
    function = get_tool(every_type).openai_schema()["function"]
    assert function["name"] == "every_type"
    assert function["description"].startswith("Exercise every annotation")
    assert "second paragraph" in function["description"]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"image": "x"}, "missing required parameter 'count'"),
        ({"image": "x", "count": 1, "positve": 2},
         "unknown parameter 'positve' (did you mean 'positive'?)"),
        ({"image": "x", "count": 1, "positive": 0},
         "parameter 'positive': Input should be greater than 0"),
        ({"image": "x", "count": 1, "mode": "slow"}, "parameter 'mode'"),
        ({"image": "x", "count": "many"}, "parameter 'count'"),
        ({"image": "x", "count": 1, "capped": 6}, "less than or equal to 5"),
        ({"image": "x", "count": 1, "pair": [1]}, "parameter 'pair'"),
        ({"image": 3, "count": 1}, "parameter 'image'"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_validation_messages_name_the_problem(arguments: object, expected: str) -> None:
    with pytest.raises(ToolCallError) as info:
        get_tool(every_type).validate(arguments)
    message = str(info.value)
    assert expected in message
    assert "every_type" in message


def test_validation_fills_defaults_and_coerces_json() -> None:
    values = get_tool(every_type).validate('{"image": "nuclei", "count": "3", "ratio": 2}')
    assert values["count"] == 3 and values["ratio"] == 2.0
    assert values["mode"] == "fast" and values["maybe"] is None


def test_direct_call_is_the_plain_function() -> None:
    assert every_type(np.ones((4, 4)), 3) == 3.0
    assert every_type(np.ones((4, 4)), 3, pixel_size=PixelSize((0.5, 0.5), "µm")) == 3.5


def test_run_resolves_artifacts_injects_pixel_size_and_logs(tmp_path) -> None:
    ws = Workspace([tmp_path], output_root=tmp_path / "out")
    meta = ImageMeta("YX", {"Y": 0.25, "X": 0.25}, "µm")
    ws.add("nuclei", np.full((8, 8), 2.0, np.float32), kind="image", meta=meta)
    result = REG.run(ws, "every_type", {"image": "nuclei", "count": 2})
    assert result.value == pytest.approx(4.25)
    assert result.outputs == []
    assert result.arguments["pixel_size"] == {"spacing": [0.25, 0.25], "unit": "µm"}
    assert ws.calls == [result]


def test_run_stores_multiple_outputs_with_meta_and_provenance(tmp_path) -> None:
    ws = Workspace([tmp_path], output_root=tmp_path / "out")
    meta = ImageMeta("YX", {"Y": 0.5, "X": 0.5}, "µm")
    image = np.zeros((10, 10), np.float32)
    image[2:5, 2:6] = 1.0
    ws.add("cells", image, kind="image", meta=meta)
    result = REG.run(ws, "two_outputs", {"image": "cells"})
    assert result.outputs == ["cells_objects", "cells_measurements"]
    labels = ws.get("cells_objects")
    assert labels.kind == "labels" and labels.meta.spacing == {"Y": 0.5, "X": 0.5}
    assert labels.provenance["tool"] == "two_outputs"
    assert labels.provenance["inputs"] == {"image": "cells"}
    assert "numpy" in labels.provenance["versions"]
    assert ws.get("cells_measurements").data["area_px"].iloc[0] == 12
    assert "1 objects" in result.summary and "area_px" in result.summary
    # A second run never overwrites the first result.
    again = REG.run(ws, "two_outputs", {"image": "cells", "threshold": 2.0})
    assert again.outputs == ["cells_objects_2", "cells_measurements_2"]
    assert ws.get("cells_objects").data.sum() == 12


def test_run_refuses_wrong_artifact_kind(tmp_path) -> None:
    ws = Workspace([tmp_path], output_root=tmp_path / "out")
    ws.add("t", pd.DataFrame({"a": [1]}), kind="table")
    with pytest.raises(Exception, match="needs image, but 't' is table"):
        REG.run(ws, "two_outputs", {"image": "t"})


def test_unknown_tool_suggests_close_names() -> None:
    with pytest.raises(ToolCallError, match="Did you mean two_outputs"):
        REG.get("two_output")


def test_card_lists_parameters_and_returns() -> None:
    card = get_tool(two_outputs).card()
    assert card.startswith("two_outputs (test): Threshold an image")
    assert "- image [image] (required)" in card
    assert "- threshold [number]: Intensity threshold. Default: 0.5." in card
    assert "Returns labels: The foreground as one object." in card
    assert "Returns table" in card


def test_snippet_is_runnable_python() -> None:
    line = get_tool(two_outputs).snippet({"image": "my cells.tif", "threshold": 0.5},
                                         ["cells_objects", "cells_measurements"])
    assert line == (
        "cells_objects, cells_measurements = two_outputs(image=my_cells_tif, threshold=0.5)"
    )
    namespace = {"two_outputs": two_outputs, "my_cells_tif": np.eye(3)}
    exec(line, namespace)  # the line repeats the call
    assert namespace["cells_measurements"]["area_px"].iloc[0] == 3
    value_line = get_tool(every_type).snippet(
        {"image": "im", "count": 2, "pixel_size": {"spacing": [0.5, 0.5], "unit": "µm"}}
    )
    assert value_line.startswith("result = every_type(image=im, count=2, pixel_size=PixelSize(")
    scope = {"every_type": every_type, "PixelSize": PixelSize, "im": np.ones((2, 2))}
    exec(value_line, scope)
    assert scope["result"] == 2.5


def test_langchain_tool_runs_in_workspace_and_reports_errors(tmp_path) -> None:
    ws = Workspace([tmp_path], output_root=tmp_path / "out")
    ws.add("cells", np.eye(6, dtype=np.float32), kind="image")
    lc_tool = get_tool(two_outputs).as_langchain(ws)
    assert lc_tool.name == "two_outputs"
    assert set(lc_tool.args) == {"image", "threshold"}
    text = lc_tool.invoke({"image": "cells", "threshold": 0.5})
    assert "cells_objects" in text and "6" in text
    error = lc_tool.invoke({"image": "no_such_image"})
    assert error.startswith("Error: No artifact or file named 'no_such_image'")


def test_decorator_refuses_undocumented_or_untyped_functions() -> None:
    registry = Registry()

    def undocumented(image: Image, sigma: float = 1.0) -> Image:
        """Blur.

        Parameters
        ----------
        image : Image
            An image.
        """
        return image

    with pytest.raises(TypeError, match="'sigma' is not documented"):
        tool(undocumented, category="x", registry=registry)

    def untyped(image, sigma: float = 1.0) -> Image:  # type: ignore[no-untyped-def]
        """Blur.

        Parameters
        ----------
        image : Image
            An image.
        sigma : float
            Width.
        """
        return image

    with pytest.raises(TypeError, match="'image' has no type hint"):
        tool(untyped, category="x", registry=registry)


def test_real_tools_are_registered_with_schemas() -> None:
    import tools

    registry = tools.load_all()
    for name in ("denoise_nlm", "voronoi_otsu_labeling", "measure_objects"):
        schema = registry.get(name).openai_schema()
        assert schema["function"]["parameters"]["properties"], name
        json.dumps(schema)  # serialisable as sent to a model


@tool(category="test", registry=REG)
def write_note(text: str, path: OutputPath, extra: OutputPath | None = None) -> str:
    """Write a text file, as plot and mesh exporters do.

    Parameters
    ----------
    text : str
        What to write.
    path : OutputPath
        The file to write.
    extra : OutputPath, optional
        A second file.
    """
    Path(path).write_text(text)
    return path


@pytest.mark.parametrize(
    "name", ["../escape.txt", "/etc/evil.txt", "sub/dir.txt", "..", ".hidden", "a\x00b", ""]
)
def test_output_paths_from_a_model_stay_in_the_session_folder(tmp_path, name: str) -> None:
    ws = Workspace([tmp_path], output_root=tmp_path / "out")
    with pytest.raises(PathNotAllowedError, match="not allowed"):
        REG.run(ws, "write_note", {"text": "x", "path": name})
    assert not (tmp_path / "escape.txt").exists()


def test_output_path_is_written_in_the_session_folder_once(tmp_path) -> None:
    ws = Workspace([tmp_path], output_root=tmp_path / "out")
    schema = get_tool(write_note).openai_schema()["function"]["parameters"]
    assert "session folder" in schema["properties"]["path"]["description"]
    assert schema["required"] == ["text", "path"]
    result = REG.run(ws, "write_note", {"text": "hello", "path": "note.txt"})
    assert Path(result.value) == ws.session_dir / "note.txt"
    assert (ws.session_dir / "note.txt").read_text() == "hello"
    assert ws.files == [ws.session_dir / "note.txt"]
    with pytest.raises(InputError, match="already exists"):
        REG.run(ws, "write_note", {"text": "again", "path": "note.txt"})
    assert (ws.session_dir / "note.txt").read_text() == "hello"


@tool(category="test", registry=REG)
def read_note(path: InputPath) -> str:
    """Read a text file, as model loaders do.

    Parameters
    ----------
    path : InputPath
        The file to read.
    """
    return Path(path).read_text()


def test_input_paths_from_a_model_are_confined_to_the_roots(tmp_path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.txt").write_text("inside")
    (tmp_path / "secret.txt").write_text("outside")
    ws = Workspace([root], output_root=tmp_path / "out")
    assert REG.run(ws, "read_note", {"path": "ok.txt"}).value == "inside"
    with pytest.raises(PathNotAllowedError):
        REG.run(ws, "read_note", {"path": "../secret.txt"})
    with pytest.raises(PathNotAllowedError):
        REG.run(ws, "read_note", {"path": str(tmp_path / "secret.txt")})
    with pytest.raises(Exception, match="does not exist"):
        REG.run(ws, "read_note", {"path": "missing.txt"})
    assert read_note(str(tmp_path / "secret.txt")) == "outside"  # direct calls are plain


def test_movies_are_processed_frame_by_frame_unless_the_tool_takes_movies(tmp_path) -> None:
    import tools
    from tools import synthetic

    registry = tools.load_all()
    data = synthetic.timelapse(8, shape=(96, 96), n_cells=6, division_rate=0.0, seed=3)
    ws = Workspace([tmp_path], output_root=tmp_path / "out")
    ws.add("movie", data.movie, kind="image", meta=data.meta)
    assert data.meta.axes == "TYX"
    segmented = registry.run(ws, "voronoi_otsu_labeling", {"image": "movie", "spot_sigma": 2.0})
    labels = ws.get(segmented.outputs[0])
    assert labels.data.shape == data.movie.shape and labels.meta.axes == "TYX"
    per_frame_counts = [len(np.unique(f[f > 0])) for f in labels.data]
    true_counts = [len(np.unique(f[f > 0])) for f in data.labels]
    assert per_frame_counts == true_counts  # each frame segmented on its own
    measured = registry.run(ws, "measure_objects", {"labels": labels.name, "image": "movie"})
    table = ws.get(measured.outputs[0]).data
    assert table.columns[0] == "frame" and sorted(table["frame"].unique()) == list(range(8))
    assert len(table) == sum(true_counts)
    tracked = registry.run(ws, "track_objects", {"labels_movie": labels.name})
    tracks = ws.get(tracked.outputs[0]).data
    assert tracks["track_id"].nunique() == len(data.tracks)  # the tracker got the whole movie


def test_movies_of_different_lengths_are_refused(tmp_path) -> None:
    ws = Workspace([tmp_path], output_root=tmp_path / "out")
    ws.add("a", np.ones((3, 8, 8), np.float32), kind="image", meta=ImageMeta("TYX"))
    ws.add("b", np.ones((4, 8, 8), np.int32), kind="labels", meta=ImageMeta("TYX"))
    with pytest.raises(InputError, match="different numbers of frames"):
        REG.run(ws, "every_type", {"image": "a", "count": 1, "labels": "b"})

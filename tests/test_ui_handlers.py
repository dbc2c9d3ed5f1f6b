"""The interface's handlers, driven without a browser: real tools, real files, scripted model."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from agent.backends import ModelInfo, ScriptedChatModel
from tests.scripted import plan
from tools import io
from tools.types import ImageMeta
from ui import render
from ui.handlers import UISession, UploadError, trace_table

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _current_image(user: str) -> str:
    """The variable of the image the person is looking at, from the request's prompt."""
    name = re.findall(r"Current image: ([\w.\-]+)", user)[-1]
    return re.sub(r"\W+", "_", name)


def segment_and_measure_model() -> ScriptedChatModel:
    """Answers any request with segment -> measure on the current image, then a summary."""
    return ScriptedChatModel(replies=[
        lambda system, user: plan(
            f"labels1 = voronoi_otsu_labeling(image={_current_image(user)}, spot_sigma=3.0, "
            "outline_sigma=1.0)",
            f"table2 = measure_objects(labels=labels1, image={_current_image(user)})",
            'answer(count(labels1), mean(table2, "area"))'),
    ])


def scripted_factory(model: str | None, base_url: str | None) -> tuple[Any, ModelInfo]:
    return segment_and_measure_model(), ModelInfo(backend="scripted", name="scripted")


@pytest.fixture
def ui(tmp_path: Path) -> UISession:
    return UISession(scripted_factory, output_root=tmp_path / "out", max_upload_mb=5)


def test_upload_segment_measure_export(ui: UISession, tmp_path: Path) -> None:
    picture, message = ui.upload(EXAMPLES / "nuclei.tif")
    assert picture.dtype == np.uint8 and picture.shape == (512, 512)
    assert "nuclei" in message and "0.5x0.5 µm" in message
    events: list[str] = []
    result = ui.ask("segment the nuclei and measure their area",
                    on_event=lambda kind, data: events.append(kind))
    assert "tool_start" in events and "tool_end" in events
    truth, _ = io.read_image(EXAMPLES / "nuclei_labels.tif")
    n_true = int(truth.max())
    # the answer states the number asked for, with its unit and the method
    assert result.text.startswith(f"{len(result.table)} nuclei (voronoi_otsu_labeling")
    assert "Mean area:" in result.text and "µm²" in result.text
    assert abs(len(result.table) - n_true) <= 0.1 * n_true  # measured against ground truth
    assert "area_um2" in result.table.columns
    assert result.overlay.shape == (512, 512, 3)
    assert (result.overlay == (255, 220, 0)).all(axis=-1).sum() > 1000  # contours drawn
    assert result.table_csv.exists() and result.plot.exists()
    assert list(result.trace["tool"]) == ["voronoi_otsu_labeling", "measure_objects"]
    archive, script = ui.export()
    names = zipfile.ZipFile(archive).namelist()
    assert "session.py" in names and "provenance.json" in names
    assert "voronoi_otsu_labeling(" in script.read_text()
    archive2, _ = ui.export()  # a second export does not collide with the first
    assert archive2 != archive


def test_export_before_any_analysis_says_so(ui: UISession) -> None:
    with pytest.raises(Exception, match="nothing to export"):
        ui.export()


def test_sample_dataset_becomes_the_current_image(ui: UISession) -> None:
    picture, message = ui.sample("real_nuclei_2d")
    assert picture.shape == (512, 512) and ui.current == "real_nuclei_2d"
    assert "real_nuclei_2d" in message


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("broken.tif", b"II*\x00" + b"\x00" * 20, "broken.tif"),
        ("empty.png", b"", "empty.png"),
        ("notes.txt", b"hello", "unsupported file type"),
        ("fake.zip", b"not a zip", "not a valid zip"),
    ],
)
def test_bad_uploads_get_a_clear_message(ui: UISession, tmp_path: Path, name: str,
                                         content: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UploadError, match=re.escape(expected)):
        ui.upload(path)
    assert ui.current is None


def test_upload_size_limit(ui: UISession, tmp_path: Path) -> None:
    big = tmp_path / "big.tif"
    tifffile.imwrite(big, np.zeros((2000, 2000), np.uint16))  # 8 MB > 5 MB limit
    with pytest.raises(UploadError, match="above the upload limit of 5 MB"):
        ui.upload(big)


def test_zip_slip_is_refused(ui: UISession, tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("image.zarr/.zattrs", "{}")
        zf.writestr("../../escaped.txt", "gotcha")
    with pytest.raises(UploadError, match="unsafe path"):
        ui.upload(archive)
    assert not (tmp_path / "escaped.txt").exists()


def test_ome_zarr_zip_upload(ui: UISession, tmp_path: Path) -> None:
    store = tmp_path / "stack.zarr"
    data = np.random.default_rng(0).integers(0, 1000, (4, 32, 32)).astype(np.uint16)
    io.write_ome_zarr(store, data, ImageMeta("ZYX", {"Z": 2.0, "Y": 0.5, "X": 0.5}, "µm"))
    archive = tmp_path / "stack.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in store.rglob("*"):
            zf.write(file, file.relative_to(tmp_path).as_posix())
    picture, message = ui.upload(archive)
    assert picture.shape == (32, 32)  # max projection of the stack
    np.testing.assert_array_equal(ui.workspace.artifacts[ui.current].data, data)
    assert "2x0.5x0.5 µm" in message


def test_empty_request_is_refused(ui: UISession) -> None:
    with pytest.raises(Exception, match="type a request"):
        ui.ask("   ")


def test_overlay_of_3d_stack_and_trace_of_errors() -> None:
    image = np.zeros((3, 20, 20), np.float32)
    labels = np.zeros((3, 20, 20), np.int32)
    labels[1, 5:10, 5:10] = 1
    picture = render.overlay(image, labels, ImageMeta("ZYX"))
    assert picture.shape == (20, 20, 3)
    from agent.session import Event

    table = trace_table([Event("error", "segment", {"image": "x"}, "Unknown tool 'segment'")])
    assert table.loc[0, "result"].startswith("error: Unknown tool")


def test_a_plot_drawn_by_a_tool_is_shown(tmp_path: Path) -> None:
    def factory(model: str | None, base_url: str | None) -> tuple[Any, ModelInfo]:
        return ScriptedChatModel(replies=[
            lambda system, user: plan(
                f"labels1 = voronoi_otsu_labeling(image={_current_image(user)}, "
                "spot_sigma=3.0)",
                "table2 = measure_objects(labels=labels1)",
                'result3 = bland_altman(table=table2, column_a="area_um2", '
                'column_b="perimeter_um", plot_path="agreement.png")',
                "answer(show(result3))"),
        ]), ModelInfo(backend="scripted", name="scripted")

    ui = UISession(factory, output_root=tmp_path / "out")
    ui.upload(EXAMPLES / "nuclei.tif")
    result = ui.ask("compare area and perimeter in a Bland-Altman plot")
    assert result.plot is not None and result.plot.name == "agreement.png"
    assert result.plot.parent == ui.workspace.session_dir

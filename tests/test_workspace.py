"""The workspace: artifacts, path confinement, kinds, budgets, saving and provenance."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools.errors import ArtifactNotFoundError, InputError, PathNotAllowedError
from tools.types import ImageMeta, PixelSize
from tools.workspace import Workspace


@pytest.fixture
def root(tmp_path: Path) -> Path:
    inside = tmp_path / "data"
    (inside / "sub").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("outside")
    tifffile.imwrite(inside / "sub" / "img.tif", np.arange(64, dtype=np.uint16).reshape(8, 8))
    return inside


@pytest.fixture
def ws(root: Path, tmp_path: Path) -> Workspace:
    return Workspace([root], output_root=tmp_path / "out")


SEGMENTS = st.sampled_from(
    ["..", ".", "sub", "img.tif", "secret.txt", "", "~", "etc", "passwd", "..\\..", "%2e%2e",
     "\u2025", "a" * 20, " "]
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture],
          deadline=None)
@given(parts=st.lists(SEGMENTS, min_size=1, max_size=8), absolute=st.booleans())
def test_hostile_paths_never_leave_the_roots(ws: Workspace, root: Path, parts, absolute) -> None:
    text = ("/" if absolute else "") + "/".join(parts)
    try:
        resolved = ws.resolve_path(text)
    except PathNotAllowedError as exc:
        assert str(exc)  # a message, not a bare exception
        return
    assert resolved == root or resolved.is_relative_to(root)


@pytest.mark.parametrize(
    "path",
    ["../secret.txt", "sub/../../secret.txt", "/etc/passwd", "", "   ", "img\x00.tif",
     "sub/" + "../" * 30 + "etc/passwd"],
)
def test_specific_escapes_are_refused_with_a_clear_message(ws: Workspace, path: str) -> None:
    with pytest.raises(PathNotAllowedError) as info:
        ws.resolve_path(path)
    assert "path" in str(info.value)


def test_symlink_escape_is_refused_but_inner_link_allowed(ws: Workspace, root: Path) -> None:
    (root / "escape").symlink_to(root.parent / "secret.txt")
    (root / "inner").symlink_to(root / "sub" / "img.tif")
    with pytest.raises(PathNotAllowedError, match="outside the workspace"):
        ws.resolve_path("escape")
    with pytest.raises(PathNotAllowedError):
        ws.get("escape")
    assert ws.resolve_path("inner") == root / "sub" / "img.tif"


def test_absolute_path_inside_root_is_allowed(ws: Workspace, root: Path) -> None:
    assert ws.resolve_path(str(root / "sub" / "img.tif")) == root / "sub" / "img.tif"


def test_get_reads_a_file_once_and_names_it(ws: Workspace) -> None:
    first = ws.get("sub/img.tif")
    assert first.name == "img" and first.kind == "image"
    assert first.provenance["sha256"] and first.data.shape == (8, 8)
    assert ws.get("sub/img.tif") is first
    assert ws.get("img") is first


def test_missing_artifact_lists_what_exists(ws: Workspace) -> None:
    ws.add("nuclei", np.ones((4, 4)), kind="image")
    with pytest.raises(ArtifactNotFoundError, match="Artifacts: nuclei"):
        ws.get("nucleus")


@pytest.mark.parametrize(
    ("name", "data", "kind", "message"),
    [
        ("bad name!", np.ones((2, 2)), "image", "not allowed"),
        ("x", np.ones((2, 2)), "labels", "integer dtype"),
        ("x", np.ones((0, 3)), "image", "empty"),
        ("x", [[1, 2]], "image", "numpy array"),
        ("x", np.ones(3), "table", "DataFrame"),
    ],
)
def test_add_validates(ws: Workspace, name, data, kind, message) -> None:
    with pytest.raises(InputError, match=message):
        ws.add(name, data, kind=kind)


def test_add_checks_axes_against_dimensions(ws: Workspace) -> None:
    with pytest.raises(InputError, match="3 dimensions but axes 'YX'"):
        ws.add("x", np.ones((2, 3, 4)), kind="image", meta=ImageMeta("YX"))


def test_names_are_unique_and_existing_one_is_kept(ws: Workspace) -> None:
    ws.add("a", np.ones((2, 2)), kind="image")
    with pytest.raises(InputError, match="already exists"):
        ws.add("a", np.zeros((2, 2)), kind="image")
    assert ws.unique_name("a") == "a_2"
    assert ws.unique_name("../../weird name") == "weird_name"


def test_kind_checks_guide_the_caller(ws: Workspace) -> None:
    image = ws.add("img", np.ones((3, 3), np.float32), kind="image")
    ws.check_kind(ws.add("lab", np.ones((3, 3), np.int32), kind="labels"), "image",
                  parameter="image")
    ws.check_kind(ws.add("int_img", np.ones((3, 3), np.uint16), kind="image"), "labels",
                  parameter="labels")
    with pytest.raises(InputError, match="segment it first"):
        ws.check_kind(image, "labels", parameter="labels")


def test_pixel_budget_points_to_tiling(tmp_path: Path) -> None:
    ws = Workspace([tmp_path], output_root=tmp_path / "out", max_pixels=100)
    big = ws.add("big", np.ones((20, 20)), kind="image")
    with pytest.raises(InputError, match="tiles"):
        ws.check_budget(big)


def test_save_keeps_pixel_size_and_never_overwrites(ws: Workspace, tmp_path: Path) -> None:
    from tools import io

    meta = ImageMeta("ZYX", {"Z": 2.0, "Y": 0.5, "X": 0.5}, "µm")
    labels = np.zeros((3, 8, 8), np.int32)
    labels[1, 2:4, 2:4] = 7
    ws.add("nuc_labels", labels, kind="labels", meta=meta)
    ws.add("tab", pd.DataFrame({"label": [7], "volume_um3": [2.0]}), kind="table")
    path = ws.save("nuc_labels")
    assert path.parent == ws.session_dir and path.parent.parent == tmp_path / "out"
    data, read_meta = io.read_image(path)
    np.testing.assert_array_equal(data, labels)
    assert read_meta.pixel_size() == PixelSize((2.0, 0.5, 0.5), "µm")
    csv = ws.save("tab")
    assert pd.read_csv(csv)["volume_um3"].tolist() == [2.0]
    with pytest.raises(Exception, match="exists"):
        ws.save("tab")
    # A second workspace writing to the same output root gets its own session folder.
    other = Workspace([tmp_path], output_root=tmp_path / "out")
    assert other.session_dir != ws.session_dir


def test_session_folder_is_readable_after_saving(ws: Workspace) -> None:
    ws.add("t", pd.DataFrame({"a": [1, 2]}), kind="table")
    path = ws.save("t")
    assert ws.resolve_path(str(path)) == path


def test_describe_is_short_and_informative(ws: Workspace) -> None:
    meta = ImageMeta("YX", {"Y": 0.5, "X": 0.5}, "µm")
    labels = np.zeros((500, 500), np.int32)
    labels[:10, :10], labels[20:30, 20:30] = 1, 2
    ws.add("lab", labels, kind="labels", meta=meta)
    text = ws.describe("lab")
    assert "2 objects" in text and "0.5x0.5 µm" in text and len(text) < 200


def test_provenance_lists_calls_and_versions(ws: Workspace) -> None:
    record = ws.provenance()
    assert "numpy" in record["versions"] and record["calls"] == []


def test_workspace_refuses_a_missing_root(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a folder"):
        Workspace([tmp_path / "nope"])


def test_relative_paths_prefer_the_root_where_the_file_exists(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (b / "only_b.csv").write_text("x\n1\n")
    ws = Workspace([a, b], output_root=tmp_path / "out")
    assert ws.resolve_path("only_b.csv") == b / "only_b.csv"
    assert ws.get("only_b.csv").kind == "table"
    assert os.fspath(ws.resolve_path("new.csv")) == os.fspath(a / "new.csv")

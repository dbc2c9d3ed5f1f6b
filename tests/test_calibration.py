"""Stated metadata: axes, pixel size, time step and channels the user gives, over the file's own.

Files are generated here with and without metadata (plain TIFF, ImageJ, OME-TIFF, PNG); every
statement is checked on what the read returns, on what the provenance says, and on the physical
outcome it must change (areas in µm², speeds in µm/min, volumes in µm³).
"""

from __future__ import annotations

import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
import tifffile
from skimage.draw import disk, ellipsoid

import tools
from tools.calibration import Statement, physical_column, reading_note, require_calibration
from tools.errors import CalibrationMissingError, InputError, StatedMetadataError
from tools.io import read_image
from tools.measure import measure_objects
from tools.read import open_image
from tools.segment import threshold_labeling
from tools.types import ImageMeta
from tools.workspace import Workspace

REGISTRY = tools.load_all()


def _discs(shape=(96, 96), radius=7, centres=((24, 24), (24, 70), (70, 40))) -> np.ndarray:
    image = np.zeros(shape, np.uint16)
    for centre in centres:
        image[disk(centre, radius, shape=shape)] = 1000
    return image


def _moving_square_movie(n_frames=6, step=3, size=8, shape=(48, 64)) -> np.ndarray:
    """One bright square that moves ``step`` pixels along x per frame."""
    movie = np.zeros((n_frames, *shape), np.uint16)
    for t in range(n_frames):
        x = 4 + t * step
        movie[t, 20:20 + size, x:x + size] = 1000
    return movie


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """Generated files: without metadata, with ImageJ calibration, with OME metadata."""
    tifffile.imwrite(tmp_path / "movie.tif", _moving_square_movie())  # 3D, no metadata
    tifffile.imwrite(tmp_path / "blobs.tif", _discs())  # 2D, no calibration
    tifffile.imwrite(tmp_path / "calibrated.tif", _discs(), imagej=True,
                     resolution=(10.0, 10.0), metadata={"unit": "um"})  # 0.1 µm pixels
    stack = np.zeros((12, 40, 40), np.uint16)
    tifffile.imwrite(tmp_path / "stack_ij.tif", stack, imagej=True, resolution=(2.0, 2.0),
                     metadata={"unit": "um", "spacing": 1.5, "axes": "ZYX"})
    tifffile.imwrite(tmp_path / "timed.ome.tif", _moving_square_movie(), ome=True,
                     photometric="minisblack",
                     metadata={"axes": "TYX", "TimeIncrement": 30.0, "TimeIncrementUnit": "s",
                               "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25})
    two = np.stack([_discs(), _discs(radius=4)])
    tifffile.imwrite(tmp_path / "two_channels.tif", two, imagej=True, metadata={"axes": "CYX"})
    iio.imwrite(tmp_path / "picture.png", (_discs() // 4).astype(np.uint8))
    return tmp_path


# -- reading: what the file says, what was stated, and the account of it -------------------------


def test_3d_array_without_metadata_is_read_as_zyx_and_the_note_says_it_was_guessed(files):
    data, meta = read_image(files / "movie.tif")
    assert meta.axes == "ZYX" and data.shape == (6, 48, 64)
    reading = meta.extra["reading"]
    assert reading["axes"]["source"] == "guessed"
    note = reading_note(meta)
    assert note.startswith("axes ZYX (guessed: a 3D array without axis metadata is read as a "
                           "z-stack; if the planes are time points, say it is a time-lapse")
    assert "pixel size unknown" in note


def test_stated_time_lapse_relabels_the_axes_and_records_the_time_step(files):
    data, meta = read_image(files / "movie.tif", axes="TYX", time_step=5, time_unit="minutes")
    assert meta.axes == "TYX" and data.shape == (6, 48, 64)
    assert meta.frame_interval() == (5.0, "min")
    reading = meta.extra["reading"]
    assert reading["axes"] == {"value": "TYX", "source": "stated", "file": "ZYX",
                               "file_guessed": True}
    assert reading["time_step"]["source"] == "stated"
    note = reading_note(meta)
    assert "axes TYX (you said so; the file had no axis metadata and would have been read as " \
           "ZYX)" in note
    assert "time step 5 min (you said so; the file had none)" in note


@pytest.mark.parametrize(("unit", "expected_unit"), [("um", "µm"), ("micron", "µm"),
                                                     ("µm", "µm"), ("nm", "nm"), ("mm", "mm")])
def test_stated_pixel_size_on_a_file_without_calibration(files, unit, expected_unit):
    _, meta = read_image(files / "blobs.tif", pixel_size=0.2, unit=unit)
    assert meta.spacing == {"Y": 0.2, "X": 0.2} and meta.unit == expected_unit
    assert meta.pixel_size().calibrated
    assert f"pixel size 0.2 {expected_unit} (you said so; the file had none)" \
        in reading_note(meta)


def test_pixel_size_without_a_unit_is_micrometres_and_says_so(files):
    _, meta = read_image(files / "picture.png", pixel_size=0.5)
    assert meta.unit == "µm" and meta.spacing == {"Y": 0.5, "X": 0.5}
    assert "unit not given, µm assumed" in reading_note(meta)


def test_file_calibration_is_used_and_named_when_nothing_is_stated(files):
    _, meta = read_image(files / "calibrated.tif")
    assert meta.unit == "µm" and meta.spacing == pytest.approx({"Y": 0.1, "X": 0.1})
    assert "pixel size 0.1 µm (from the ImageJ metadata)" in reading_note(meta)


def test_user_wins_over_a_contradicting_file_and_the_note_says_the_file_disagreed(files):
    _, meta = read_image(files / "calibrated.tif", pixel_size=0.2, unit="µm")
    assert meta.spacing == {"Y": 0.2, "X": 0.2}
    reading = meta.extra["reading"]["pixel_size"]
    assert reading["sources"] == {"Y": "stated", "X": "stated"}
    assert reading["file_disagrees"] == pytest.approx({"Y": 0.1, "X": 0.1})
    assert "pixel size 0.2 µm (you said so; the file says 0.1 µm; yours is used)" \
        in reading_note(meta)


def test_stated_pixel_size_in_nm_is_compared_with_the_file_in_its_unit(files):
    _, meta = read_image(files / "calibrated.tif", pixel_size=100, unit="nm")
    assert meta.unit == "nm" and meta.spacing == {"Y": 100.0, "X": 100.0}
    assert "(you said so; the file agrees)" in reading_note(meta)


def test_z_step_and_pixel_size_of_a_z_stack(files):
    _, meta = read_image(files / "stack_ij.tif")
    assert meta.spacing == pytest.approx({"Z": 1.5, "Y": 0.5, "X": 0.5})
    _, meta = read_image(files / "stack_ij.tif", pixel_size=0.3, z_step=2, unit="um")
    assert meta.spacing == {"Z": 2.0, "Y": 0.3, "X": 0.3}
    note = reading_note(meta)
    assert "z step 2 µm (you said so; the file says 1.5 µm; yours is used)" in note
    # Only the pixel size stated: the file's z step stays, converted to the stated unit.
    _, meta = read_image(files / "stack_ij.tif", pixel_size=300, unit="nm")
    assert meta.spacing == pytest.approx({"Z": 1500.0, "Y": 300.0, "X": 300.0})
    assert meta.unit == "nm"


def test_z_stack_without_a_z_step_says_the_assumption(files):
    _, meta = read_image(files / "movie.tif", pixel_size=0.4)
    assert meta.axes == "ZYX" and meta.spacing == {"Z": 0.4, "Y": 0.4, "X": 0.4}
    assert meta.extra["reading"]["pixel_size"]["sources"]["Z"] == "assumed"
    assert "z step 0.4 µm (not known: assumed equal to the pixel size" in reading_note(meta)


def test_ome_time_increment_is_read_and_a_stated_step_wins(files):
    _, meta = read_image(files / "timed.ome.tif")
    assert meta.axes == "TYX" and meta.frame_interval() == (30.0, "s")
    assert "time step 30 s (from the OME metadata)" in reading_note(meta)
    _, meta = read_image(files / "timed.ome.tif", time_step=1, time_unit="min")
    assert meta.frame_interval() == (1.0, "min")
    assert "time step 1 min (you said so; the file says 0.5 min; yours is used)" \
        in reading_note(meta)


def test_channel_names(files):
    _, meta = read_image(files / "two_channels.tif", channel_names=["DAPI", "GFP"])
    assert meta.axes == "CYX" and meta.extra["channel_names"] == ["DAPI", "GFP"]
    assert "channels DAPI, GFP (you said so)" in reading_note(meta)


def test_stated_axes_in_file_order_are_put_in_canonical_order(files):
    tifffile.imwrite(files / "yxt.tif", np.zeros((16, 20, 7), np.uint8))
    data, meta = read_image(files / "yxt.tif", axes="YXT")
    assert meta.axes == "TYX" and data.shape == (7, 16, 20)


# -- bad values: typed errors that name the problem ----------------------------------------------


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"axes": "TZYX"}, r"axes 'TZYX' have 4 letters but movie.tif has 3 dimensions.*'TYX'"),
    ({"axes": "TYY"}, "distinct letters"),
    ({"axes": "TQX"}, "distinct letters from T, C, Z, Y, X"),
    ({"axes": "TZC"}, "must include Y and X"),
    ({"pixel_size": -0.2}, "pixel size must be a positive number, got -0.2"),
    ({"pixel_size": 0}, "positive number"),
    ({"pixel_size": float("nan")}, "positive number"),
    ({"pixel_size": [0.1, 0.2, 0.3, 0.4]}, "4 values"),
    ({"pixel_size": 0.2, "unit": "inch"}, "unknown length unit 'inch'.*nm, µm"),
    ({"unit": "µm"}, "without a pixel size"),
    ({"z_step": -1}, "z step must be a positive number"),
    ({"time_step": 0}, "time step must be a positive number"),
    ({"axes": "TYX", "time_step": 5, "time_unit": "fortnight"}, "unknown time unit"),
    ({"time_step": 5}, "a time step was stated for movie.tif, but its axes are ZYX"),
    ({"axes": "TYX", "z_step": 2}, "a z step was stated for movie.tif, but its axes are TYX"),
    ({"channel_names": ["a", "b"]}, "channel names were stated.*no C"),
    ({"axes": "CYX", "channel_names": ["a", "b"]}, "2 channel names.*it has 6 channels"),
    ({"pixel_size": [2.0, 0.3, 0.3], "z_step": 3}, "z step is stated twice"),
])
def test_bad_statements_are_refused_with_a_message_naming_the_problem(files, kwargs, match):
    with pytest.raises(StatedMetadataError, match=match):
        read_image(files / "movie.tif", **kwargs)


def test_a_stated_metadata_error_is_an_input_error():
    assert issubclass(StatedMetadataError, InputError)
    assert issubclass(CalibrationMissingError, InputError)


# -- the workspace keeps statements and applies them on every read -------------------------------


def test_workspace_state_applies_on_every_later_read_and_rereads_an_earlier_one(files):
    ws = Workspace([files], output_root=files / "out")
    before = ws.get("movie.tif")
    assert before.meta.axes == "ZYX"
    stated = ws.state("movie.tif", axes="TYX", time_step=5, time_unit="min")
    assert stated is before and stated.name == "movie"  # the same artifact, read again
    assert ws.get("movie.tif").meta.axes == "TYX"
    assert ws.get("movie").meta.frame_interval() == (5.0, "min")
    assert stated.provenance["stated"] == {"axes": "TYX", "time_step": 5.0, "time_unit": "min"}
    assert stated.provenance["reading"]["axes"]["source"] == "stated"
    # A second statement adds to the first.
    ws.state("movie", pixel_size=0.5)
    meta = ws.get("movie.tif").meta
    assert meta.axes == "TYX" and meta.spacing == {"Y": 0.5, "X": 0.5}
    assert ws.stated("movie.tif") == {"axes": "TYX", "pixel_size": 0.5, "time_step": 5.0,
                                      "time_unit": "min"}


def test_a_statement_that_does_not_fit_is_refused_and_not_kept(files):
    ws = Workspace([files], output_root=files / "out")
    with pytest.raises(StatedMetadataError, match="4 letters"):
        ws.state("movie.tif", axes="TZYX")
    assert ws.stated("movie.tif") == {}
    assert ws.get("movie.tif").meta.axes == "ZYX"


def test_state_before_the_first_read_and_the_session_wide_default(files):
    ws = Workspace([files], output_root=files / "out")
    ws.state_default(pixel_size=0.2, unit="um")
    ws.state("movie.tif", axes="TYX")
    movie = ws.get("movie.tif")
    assert movie.meta.axes == "TYX" and movie.meta.spacing == {"Y": 0.2, "X": 0.2}
    blobs = ws.get("blobs.tif")
    assert blobs.meta.unit == "µm" and blobs.provenance["stated"] == {"pixel_size": 0.2,
                                                                     "unit": "µm"}
    assert set(ws.reading_notes()) == {"movie", "blobs"}


def test_state_on_an_array_added_in_code(tmp_path):
    ws = Workspace([tmp_path], output_root=tmp_path / "out")
    ws.add("movie", _moving_square_movie(), kind="image")
    ws.state("movie", axes="TYX", pixel_size=0.5, time_step=2, time_unit="min")
    meta = ws.get("movie").meta
    assert meta.axes == "TYX" and meta.spacing == {"Y": 0.5, "X": 0.5}
    assert meta.frame_interval() == (2.0, "min")
    ws.state("movie", pixel_size=0.25)  # restated from the array as added, not cumulatively
    assert ws.get("movie").meta.axes == "TYX" and ws.get("movie").meta.spacing["X"] == 0.25


def test_state_refuses_missing_files_and_tables(files):
    ws = Workspace([files], output_root=files / "out")
    with pytest.raises(Exception, match="does not exist"):
        ws.state("nothing.tif", axes="TYX")
    pd.DataFrame({"a": [1]}).to_csv(files / "t.csv", index=False)
    with pytest.raises(InputError, match="is a table"):
        ws.state("t.csv", pixel_size=0.2)


# -- open_image: directly and through the registry -----------------------------------------------


def test_open_image_through_the_registry_states_and_reads(files):
    ws = Workspace([files], output_root=files / "out")
    result = REGISTRY.run(ws, "open_image", {"path": "movie.tif", "axes": "TYX",
                                             "time_step": 5, "time_unit": "min"})
    assert result.outputs == ["movie"]
    assert "read as: axes TYX (you said so" in result.summary
    assert result.arguments["path"] == str(files / "movie.tif")
    artifact = ws.get("movie")
    assert artifact.meta.axes == "TYX" and artifact.meta.frame_interval() == (5.0, "min")
    # Every later read of the file applies it.
    assert ws.get("movie.tif") is artifact
    direct = open_image(path=str(files / "movie.tif"), axes="TYX", time_step=5,
                        time_unit="min")
    assert np.array_equal(direct, artifact.data)


def test_open_image_bad_value_through_the_registry_is_a_typed_error(files):
    ws = Workspace([files], output_root=files / "out")
    with pytest.raises(StatedMetadataError, match="4 letters"):
        REGISTRY.run(ws, "open_image", {"path": "movie.tif", "axes": "TZYX"})
    with pytest.raises(StatedMetadataError, match="unknown length unit"):
        REGISTRY.run(ws, "open_image", {"path": "blobs.tif", "pixel_size": 0.2,
                                        "unit": "parsec"})


def test_open_image_replaces_a_default_axes_guess_for_the_tools_that_follow(files):
    """Segmenting then tracking: as a z-stack the movie is one volume; as TYX it is tracked."""
    ws = Workspace([files], output_root=files / "out")
    volume = REGISTRY.run(ws, "threshold_labeling", {"image": "movie.tif"})
    assert ws.get(volume.outputs[0]).meta.axes == "ZYX"
    assert int(ws.get(volume.outputs[0]).data.max()) == 1  # the moving square: one 3D object
    REGISTRY.run(ws, "open_image", {"path": "movie.tif", "axes": "TYX"})
    labels = REGISTRY.run(ws, "threshold_labeling", {"image": "movie"})
    tracks = REGISTRY.run(ws, "track_objects", {"labels_movie": labels.outputs[0]})
    table = ws.get(tracks.outputs[0]).data
    assert table["track_id"].nunique() == 1 and len(table) == 6  # one track over 6 frames


# -- a direct call and a registry call behave the same (#17 item 6) ------------------------------


def test_call_with_meta_splits_movies_and_fills_pixel_size_like_the_registry(files):
    ws = Workspace([files], output_root=files / "out")
    ws.state("movie.tif", axes="TYX", pixel_size=0.5)
    movie = ws.get("movie.tif")
    through_registry = ws.get(REGISTRY.run(ws, "threshold_labeling",
                                           {"image": "movie"}).outputs[0]).data
    direct = threshold_labeling.call_with_meta(image=movie.data, meta=movie.meta)
    assert np.array_equal(direct, through_registry)
    assert [int(frame.max()) for frame in direct] == [1] * 6  # one object per frame

    labels_name = REGISTRY.run(ws, "threshold_labeling", {"image": "movie"}).outputs[0]
    registry_table = ws.get(REGISTRY.run(ws, "measure_objects",
                                         {"labels": labels_name}).outputs[0]).data
    direct_table = measure_objects.call_with_meta(labels=direct, meta=movie.meta)
    pd.testing.assert_frame_equal(direct_table.reset_index(drop=True),
                                  registry_table.reset_index(drop=True))
    assert "frame" in direct_table and "area_um2" in direct_table
    per_frame_pixels = [(frame > 0).sum() for frame in direct]
    assert direct_table["area_um2"].tolist() == pytest.approx([n * 0.25 for n in
                                                                per_frame_pixels])
    # Without metadata the same call is a plain call: the movie is one volume, one row.
    assert len(measure_objects(direct)) == 1


def test_call_with_meta_checks_its_arguments():
    image = np.zeros((4, 16, 16), np.float32)
    with pytest.raises(InputError, match="3 dimensions but its axes are 'YX'"):
        threshold_labeling.call_with_meta(image=image, meta=ImageMeta(axes="YX"))
    with pytest.raises(Exception, match="no parameter"):
        threshold_labeling.call_with_meta(picture=image, meta=ImageMeta(axes="TYX"))


# -- physical units follow the calibration -------------------------------------------------------


def test_areas_come_out_in_square_micrometres_when_a_pixel_size_is_stated(files):
    ws = Workspace([files], output_root=files / "out")
    ws.state("blobs.tif", pixel_size=0.2, unit="µm")
    labels = REGISTRY.run(ws, "threshold_labeling", {"image": "blobs.tif"}).outputs[0]
    table = ws.get(REGISTRY.run(ws, "measure_objects", {"labels": labels}).outputs[0]).data
    pixels = [int((ws.get(labels).data == i).sum()) for i in (1, 2, 3)]
    assert table["area_um2"].tolist() == pytest.approx([n * 0.04 for n in pixels])
    # Against the analytic disc area (radius 7 px = 1.4 µm): within 10 %.
    assert table["area_um2"].mean() == pytest.approx(math.pi * 1.4**2, rel=0.10)
    assert physical_column(table, "area_µm²").mean() == pytest.approx(np.mean(pixels) * 0.04)


def test_the_user_pixel_size_wins_over_the_file_in_the_measured_area(files):
    ws = Workspace([files], output_root=files / "out")
    labels = REGISTRY.run(ws, "threshold_labeling", {"image": "calibrated.tif"}).outputs[0]
    file_area = ws.get(REGISTRY.run(ws, "measure_objects",
                                    {"labels": labels}).outputs[0]).data["area_um2"]
    ws.state("calibrated.tif", pixel_size=0.2)
    labels = REGISTRY.run(ws, "threshold_labeling", {"image": "calibrated"}).outputs[0]
    stated_area = ws.get(REGISTRY.run(ws, "measure_objects",
                                      {"labels": labels}).outputs[0]).data["area_um2"]
    assert stated_area.to_numpy() == pytest.approx(4 * file_area.to_numpy())


def test_asking_for_square_micrometres_without_any_calibration_says_what_is_missing(files):
    ws = Workspace([files], output_root=files / "out")
    labels = REGISTRY.run(ws, "threshold_labeling", {"image": "blobs.tif"}).outputs[0]
    table = ws.get(REGISTRY.run(ws, "measure_objects", {"labels": labels}).outputs[0]).data
    assert "area_px" in table and "area_um2" not in table
    with pytest.raises(CalibrationMissingError, match=r"area in µm² needs the pixel size.*"
                                                      r"measured in pixels.*--pixel-size"):
        physical_column(table, "area_um2", name="blobs_labels_measurements")
    with pytest.raises(CalibrationMissingError, match="none was stated"):
        require_calibration(ws.get("blobs").meta, what="the area in µm²", name="blobs")
    with pytest.raises(InputError, match="no column 'volume_um3'"):
        physical_column(table, "volume_um3")


def test_areas_measured_in_nm_are_converted_when_asked_in_square_micrometres():
    table = pd.DataFrame({"area_nm2": [4.0e6, 1.0e6], "perimeter_mm": [0.002, 0.001]})
    assert physical_column(table, "area_um2").tolist() == pytest.approx([4.0, 1.0])
    assert physical_column(table, "perimeter_um").tolist() == pytest.approx([2.0, 1.0])


def test_tracking_speed_uses_the_stated_pixel_size_and_time_step(files):
    ws = Workspace([files], output_root=files / "out")
    REGISTRY.run(ws, "open_image", {"path": "movie.tif", "axes": "TYX", "pixel_size": 0.5,
                                    "time_step": 2, "time_unit": "min"})
    labels = REGISTRY.run(ws, "threshold_labeling", {"image": "movie"}).outputs[0]
    tracks = REGISTRY.run(ws, "track_objects", {"labels_movie": labels}).outputs[0]
    assert "time_min" in ws.get(tracks).data
    features = ws.get(REGISTRY.run(ws, "track_features", {"tracks": tracks}).outputs[0]).data
    # The square moves 3 px = 1.5 µm per frame, a frame every 2 min: 0.75 µm/min.
    assert features["mean_speed_um_per_min"].tolist() == pytest.approx([0.75])
    assert features["duration_min"].tolist() == pytest.approx([10.0])
    msd = ws.get(REGISTRY.run(ws, "mean_squared_displacement",
                              {"tracks": tracks}).outputs[0]).data
    assert msd["lag_min"].iloc[0] == pytest.approx(2.0)
    assert msd["msd_um2"].iloc[0] == pytest.approx(1.5**2)


def test_volumes_use_the_stated_z_step(tmp_path):
    # An ellipsoid 3 planes deep and 12 px wide: a sphere of radius 6 µm at z step 2 µm and
    # pixel size 0.5 µm.
    blob = ellipsoid(3, 12, 12).astype(np.uint8)
    stack = np.zeros((blob.shape[0] + 4, blob.shape[1] + 4, blob.shape[2] + 4), np.uint8)
    stack[2:-2, 2:-2, 2:-2] = blob
    tifffile.imwrite(tmp_path / "stack_labels.tif", stack)
    ws = Workspace([tmp_path], output_root=tmp_path / "out")
    ws.state("stack_labels.tif", axes="ZYX", pixel_size=0.5, z_step=2, unit="µm")
    table = ws.get(REGISTRY.run(ws, "measure_surfaces",
                                {"labels": "stack_labels"}).outputs[0]).data
    sphere = 4 / 3 * math.pi * 6.0**3
    assert table["volume_um3"].iloc[0] == pytest.approx(sphere, rel=0.10)
    assert table["surface_area_um2"].iloc[0] == pytest.approx(4 * math.pi * 36, rel=0.15)


# -- the exported script reads the file the same way --------------------------------------------


def test_exported_session_script_repeats_the_statement(files, tmp_path):
    import os
    import subprocess
    import sys

    from agent.session import Session

    ws = Workspace([files], output_root=tmp_path / "out")
    ws.state("blobs.tif", pixel_size=0.2, unit="µm")
    session = Session(ws, registry=REGISTRY)
    labels = REGISTRY.run(ws, "threshold_labeling", {"image": "blobs.tif"}).outputs[0]
    table = REGISTRY.run(ws, "measure_objects", {"labels": labels}).outputs[0]
    exported = session.export(tmp_path / "export")
    script = exported.script.read_text()
    assert "pixel_size=0.2, unit='µm')" in script
    out = tmp_path / "again"
    env = {**os.environ, "PYTHONPATH": str(Path(tools.__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, str(exported.script), str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    again = pd.read_csv(out / f"{table}.csv")
    assert again["area_um2"].tolist() == pytest.approx(ws.get(table).data["area_um2"].tolist())


def test_statement_make_normalizes_and_merges():
    first = Statement.make(axes="tyx", pixel_size=[2.0, 0.3, 0.3], unit="micron")
    assert first.axes == "TYX" and first.pixel_size == {"Z": 2.0, "Y": 0.3, "X": 0.3}
    assert first.unit == "µm"
    later = first.merged(Statement.make(pixel_size=0.4))
    assert later.pixel_size == {"Z": 2.0, "Y": 0.4, "X": 0.4} and later.axes == "TYX"
    assert Statement.make(channel_names="DAPI, GFP").channel_names == ("DAPI", "GFP")
    assert Statement().empty and not first.empty


def test_a_second_statement_that_contradicts_the_first_wins_and_says_so(files):
    ws = Workspace([files], output_root=files / "out")
    ws.state("blobs.tif", pixel_size=0.1)
    artifact = ws.state("blobs.tif", pixel_size=0.2)
    assert artifact.meta.spacing == {"Y": 0.2, "X": 0.2}
    note = ws.reading_note("blobs")
    assert note.endswith("you had said pixel size 0.1 before: the new value is used")
    assert artifact.provenance["reading"]["restated"] == {"pixel_size": {"before": 0.1,
                                                                         "now": 0.2}}
    # open_image on the artifact's name restates it too.
    result = REGISTRY.run(ws, "open_image", {"path": "blobs", "pixel_size": 0.3})
    assert result.arguments["path"] == str(files / "blobs.tif")
    assert ws.get("blobs").meta.spacing == {"Y": 0.3, "X": 0.3}
    assert "time step 5 min" in ws.describe(ws.state("movie.tif", axes="TYX", time_step=5,
                                                     time_unit="min").name)


def test_a_session_with_open_image_exports_a_script_that_repeats_it(files, tmp_path):
    import os
    import subprocess
    import sys

    from agent.pipeline import load_pipeline, replay
    from agent.session import Session

    ws = Workspace([files], output_root=tmp_path / "out")
    session = Session(ws, registry=REGISTRY)
    REGISTRY.run(ws, "open_image", {"path": "movie.tif", "axes": "TYX", "pixel_size": 0.5})
    labels = REGISTRY.run(ws, "threshold_labeling", {"image": "movie"}).outputs[0]
    table = REGISTRY.run(ws, "measure_objects", {"labels": labels}).outputs[0]
    exported = session.export(tmp_path / "export")
    script = exported.script.read_text()
    assert f"movie = open_image(path={str(files / 'movie.tif')!r}, axes='TYX'" in script
    env = {**os.environ, "PYTHONPATH": str(Path(tools.__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, str(exported.script), str(tmp_path / "again")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    again = pd.read_csv(tmp_path / "again" / f"{table}.csv")
    pd.testing.assert_frame_equal(again, ws.get(table).data, check_dtype=False)
    # The same session replayed on another file (what bia batch does) states it there too.
    tifffile.imwrite(files / "other.tif", _moving_square_movie(n_frames=4))
    pipeline = load_pipeline(exported.script, REGISTRY)
    other = Workspace([files], output_root=tmp_path / "other")
    names = replay(pipeline, other, "other.tif", REGISTRY)
    replayed = other.get(names[pipeline.steps[-1].outputs[0]]).data
    assert replayed["frame"].tolist() == [0, 1, 2, 3] and "area_um2" in replayed
    # Read from the script alone (no provenance.json beside it): the movie steps are found.
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "session.py").write_text(script)
    steps = load_pipeline(alone / "session.py", REGISTRY).steps
    assert [s.tool for s in steps] == ["open_image", "threshold_labeling", "measure_objects"]
    assert "threshold_labeling.call_with_meta(image=movie" in script


def test_three_planes_tifffile_stored_as_rgb_can_be_stated_a_movie(tmp_path):
    tifffile.imwrite(tmp_path / "three.tif", _moving_square_movie(n_frames=3))
    _, meta = read_image(tmp_path / "three.tif")
    assert meta.axes == "CYX" and meta.extra.get("rgb")  # tifffile's reading of 3 planes
    data, meta = read_image(tmp_path / "three.tif", axes="TYX")
    assert meta.axes == "TYX" and "rgb" not in meta.extra and data.shape == (3, 48, 64)
    assert "the TIFF metadata says CYX" in reading_note(meta)

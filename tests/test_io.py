"""Tests of tools.io against real files written by the real libraries."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
import tifffile
import zarr

from tools.errors import ImageFileError
from tools.io import (
    SUPPORTED_SUFFIXES,
    read_image,
    write_image,
    write_labels,
    write_ome_zarr,
    write_table,
)
from tools.types import ImageMeta

RNG = np.random.default_rng(0)


def _ramp(shape: tuple[int, ...], dtype: str = "uint16") -> np.ndarray:
    """Distinct values everywhere, so a transposed or shifted read-back cannot pass."""
    return np.arange(int(np.prod(shape))).reshape(shape).astype(dtype)


def _assert_raises_naming(path: Path, match: str | None = None) -> ImageFileError:
    with pytest.raises(ImageFileError, match=match) as info:
        read_image(path)
    assert path.name in str(info.value)
    return info.value


# --- OME-TIFF ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "axes", "spacing", "dtype"),
    [
        ((17, 23), "YX", {"Y": 0.65, "X": 0.65}, "uint16"),
        ((5, 17, 23), "ZYX", {"Z": 2.0, "Y": 0.5, "X": 0.5}, "float32"),
        ((3, 4, 9, 11), "TZYX", {"Z": 1.5, "Y": 0.2, "X": 0.25}, "uint8"),
        ((2, 3, 4, 9, 11), "TCZYX", {"Z": 3.0, "Y": 0.1, "X": 0.1}, "int16"),
    ],
)
def test_ome_tiff_round_trip_keeps_values_axes_spacing_unit(tmp_path, shape, axes, spacing, dtype):
    data = _ramp(shape, dtype)
    path = tmp_path / "img.ome.tif"
    write_image(path, data, ImageMeta(axes=axes, spacing=spacing, unit="µm"))

    back, meta = read_image(path)

    np.testing.assert_array_equal(back, data)
    assert back.dtype == data.dtype
    assert meta.axes == axes
    assert meta.spacing == pytest.approx(spacing)
    assert meta.unit == "µm"
    assert meta.source == str(path)
    assert meta.extra["format"] == "ome-tiff"
    assert meta.pixel_size().spacing == pytest.approx(tuple(spacing[a] for a in axes if a in "ZYX"))


def test_ome_tiff_written_by_tifffile_with_other_units_is_normalized(tmp_path):
    path = tmp_path / "nm.ome.tif"
    data = _ramp((4, 6, 7))
    tifffile.imwrite(
        path,
        data,
        ome=True,
        metadata={
            "axes": "ZYX",
            "PhysicalSizeZ": 0.3,
            "PhysicalSizeZUnit": "µm",
            "PhysicalSizeY": 100.0,
            "PhysicalSizeYUnit": "nm",
            "PhysicalSizeX": 100.0,
            "PhysicalSizeXUnit": "nm",
        },
    )
    _, meta = read_image(path)
    # Mixed units are converted to one.
    assert meta.unit == "µm"
    assert meta.spacing == pytest.approx({"Z": 0.3, "Y": 0.1, "X": 0.1})


def test_ome_tiff_in_non_canonical_order_comes_back_canonical(tmp_path):
    path = tmp_path / "zc.ome.tif"
    data = _ramp((4, 2, 6, 7))  # Z, C, Y, X as ImageJ/Bio-Formats often store it
    tifffile.imwrite(path, data, ome=True, photometric="minisblack", metadata={"axes": "ZCYX"})
    back, meta = read_image(path)
    assert meta.axes == "CZYX"
    np.testing.assert_array_equal(back, data.transpose(1, 0, 2, 3))


def test_write_image_transposes_to_canonical_order(tmp_path):
    data = _ramp((6, 7, 3), "uint8")  # YXC
    path = write_image(tmp_path / "yxc.tif", data, ImageMeta(axes="YXC"))
    back, meta = read_image(path)
    assert meta.axes == "CYX"
    np.testing.assert_array_equal(back, np.moveaxis(data, -1, 0))


def test_uncalibrated_round_trip_stays_pixel(tmp_path):
    path = write_image(tmp_path / "p.tif", _ramp((5, 6)), ImageMeta(axes="YX"))
    _, meta = read_image(path)
    assert meta.unit == "pixel"
    assert meta.spacing == {}


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [("int64", np.int32), ("uint64", np.uint32), ("float16", np.float32), ("bool", np.bool_)],
)
def test_write_image_stores_types_ome_lacks_losslessly(tmp_path, dtype, expected):
    data = (_ramp((4, 5)) % 2 if dtype == "bool" else _ramp((4, 5))).astype(dtype)
    path = write_image(tmp_path / "t.tif", data, ImageMeta(axes="YX"))
    back, _ = read_image(path)
    assert back.dtype == expected
    np.testing.assert_array_equal(back, data)


def test_write_image_refuses_int64_out_of_32_bit_range(tmp_path):
    data = np.array([[0, 2**40]], dtype=np.int64)
    with pytest.raises(ImageFileError, match="int64"):
        write_image(tmp_path / "big.tif", data, ImageMeta(axes="YX"))


# --- ImageJ and plain TIFF ------------------------------------------------------------------------


def test_imagej_hyperstack_spacing_and_unit(tmp_path):
    path = tmp_path / "ij.tif"
    data = _ramp((4, 10, 12), "float32")
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / 0.65, 1 / 0.65),
        metadata={"unit": "um", "spacing": 2.0, "axes": "ZYX"},
    )
    back, meta = read_image(path)
    np.testing.assert_array_equal(back, data)
    assert meta.axes == "ZYX"
    assert meta.unit == "µm"
    assert meta.spacing == pytest.approx({"Z": 2.0, "Y": 0.65, "X": 0.65}, rel=1e-4)
    assert meta.extra["format"] == "imagej-tiff"


def test_imagej_escaped_micro_sign_and_time_interval(tmp_path):
    path = tmp_path / "ij5.tif"
    data = _ramp((2, 3, 2, 5, 6))
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(5.0, 5.0),
        metadata={"axes": "TZCYX", "unit": "\\u00B5m", "finterval": 0.5},
    )
    back, meta = read_image(path)
    assert meta.axes == "TCZYX"
    np.testing.assert_array_equal(back, data.transpose(0, 2, 1, 3, 4))
    assert meta.unit == "µm"
    # No "spacing" key: ImageJ leaves it out when the depth is 1 unit.
    assert meta.spacing == pytest.approx({"Z": 1.0, "Y": 0.2, "X": 0.2})
    assert meta.extra["time_interval"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("shape", "expected_axes"), [((9, 11), "YX"), ((3, 9, 11), "ZYX"), ((2, 3, 9, 11), "ZYX")]
)
def test_plain_tiff_has_default_axes_and_no_calibration(tmp_path, shape, expected_axes):
    path = tmp_path / "plain.tiff"
    data = _ramp(shape)
    tifffile.imwrite(path, data, photometric="minisblack", metadata=None)
    back, meta = read_image(path)
    # A plain TIFF is a stack of pages: without metadata a 4D array comes back as one stack.
    np.testing.assert_array_equal(back, data.reshape(-1, 9, 11).squeeze())
    assert meta.axes == expected_axes
    assert meta.unit == "pixel"
    assert meta.spacing == {}


def test_plain_tiff_resolution_in_centimetres_is_a_calibration(tmp_path):
    path = tmp_path / "cm.tif"
    tifffile.imwrite(path, _ramp((4, 5)), resolution=(1e4 / 0.2, 1e4 / 0.2), resolutionunit=3)
    _, meta = read_image(path)
    assert meta.unit == "µm"
    assert meta.spacing == pytest.approx({"Y": 0.2, "X": 0.2})


def test_plain_tiff_resolution_in_inches_is_ignored(tmp_path):
    path = tmp_path / "dpi.tif"
    tifffile.imwrite(path, _ramp((4, 5)), resolution=(72.0, 72.0), resolutionunit=2)
    _, meta = read_image(path)
    assert meta.unit == "pixel"


def test_rgb_tiff_becomes_cyx(tmp_path):
    path = tmp_path / "rgb.tif"
    data = RNG.integers(0, 255, (8, 9, 3), dtype=np.uint8)
    tifffile.imwrite(path, data, photometric="rgb")
    back, meta = read_image(path)
    assert meta.axes == "CYX"
    assert meta.extra["rgb"] is True
    np.testing.assert_array_equal(back, np.moveaxis(data, -1, 0))


# --- PNG / JPEG -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_png_gray(tmp_path, dtype):
    path = tmp_path / "g.png"
    data = RNG.integers(0, np.iinfo(dtype).max, (12, 15)).astype(dtype)
    iio.imwrite(path, data)
    back, meta = read_image(path)
    np.testing.assert_array_equal(back, data)
    assert back.dtype == dtype
    assert meta.axes == "YX"
    assert meta.unit == "pixel"
    assert meta.source == str(path)


def test_png_rgb_becomes_cyx(tmp_path):
    path = tmp_path / "c.png"
    data = RNG.integers(0, 255, (12, 15, 3), dtype=np.uint8)
    iio.imwrite(path, data)
    back, meta = read_image(path)
    assert meta.axes == "CYX"
    assert back.shape == (3, 12, 15)
    assert meta.extra["rgb"] is True
    np.testing.assert_array_equal(back, np.moveaxis(data, -1, 0))


def test_png_gray_saved_as_rgba_becomes_yx(tmp_path):
    path = tmp_path / "grey_rgba.png"
    gray = RNG.integers(0, 255, (12, 15), dtype=np.uint8)
    rgba = np.stack([gray, gray, gray, np.full_like(gray, 255)], axis=-1)
    iio.imwrite(path, rgba)
    back, meta = read_image(path)
    assert meta.axes == "YX"
    np.testing.assert_array_equal(back, gray)


def test_png_with_real_transparency_keeps_alpha(tmp_path):
    path = tmp_path / "alpha.png"
    rgba = RNG.integers(0, 255, (6, 7, 4), dtype=np.uint8)
    iio.imwrite(path, rgba)
    back, meta = read_image(path)
    assert meta.axes == "CYX"
    assert back.shape == (4, 6, 7)


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".JPG"])
def test_jpeg_rgb_and_gray(tmp_path, suffix):
    yy, xx = np.mgrid[0:32, 0:40]
    rgb = np.stack([yy * 7, xx * 6, (yy + xx) * 3], axis=-1).astype(np.uint8)
    path = tmp_path / f"c{suffix}"
    iio.imwrite(path, rgb, plugin="pillow", extension=".jpeg", quality=95)
    back, meta = read_image(path)
    assert meta.axes == "CYX"
    assert back.shape == (3, 32, 40)
    # Lossy, but close on a smooth image.
    assert np.abs(back.astype(int) - np.moveaxis(rgb, -1, 0)).mean() < 3

    gray_path = tmp_path / f"g{suffix}"
    iio.imwrite(gray_path, rgb[..., 0], plugin="pillow", extension=".jpeg", quality=95)
    back, meta = read_image(gray_path)
    assert meta.axes == "YX"
    assert back.shape == (32, 40)


# --- OME-Zarr -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "axes", "spacing"),
    [
        ((13, 14), "YX", {"Y": 0.3, "X": 0.3}),
        ((4, 13, 14), "ZYX", {"Z": 2.0, "Y": 0.5, "X": 0.5}),
        ((2, 3, 4, 13, 14), "TCZYX", {"Z": 1.0, "Y": 0.1, "X": 0.2}),
    ],
)
def test_ome_zarr_round_trip(tmp_path, shape, axes, spacing):
    data = _ramp(shape, "float32")
    path = write_ome_zarr(tmp_path / "img.ome.zarr", data, ImageMeta(axes, spacing, "µm"))
    assert path.is_dir()
    attrs = json.loads((path / ".zattrs").read_text())
    assert attrs["multiscales"][0]["version"] == "0.4"

    back, meta = read_image(path)
    np.testing.assert_array_equal(back, data)
    assert meta.axes == axes
    assert meta.spacing == pytest.approx(spacing)
    assert meta.unit == "µm"
    assert meta.extra["format"] == "ome-zarr"


def test_ome_zarr_scale_and_units_written_by_hand(tmp_path):
    """Multiscale-level scale multiplies the dataset scale; unit names are normalized."""
    path = tmp_path / "hand.zarr"
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    group.create_array("s0", data=_ramp((2, 5, 6)))
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [
                {"name": "c", "type": "channel"},
                {"name": "y", "type": "space", "unit": "nanometer"},
                {"name": "x", "type": "space", "unit": "nanometer"},
            ],
            "datasets": [
                {"path": "s0", "coordinateTransformations": [{"type": "scale", "scale": [1, 2, 2]}]}
            ],
            "coordinateTransformations": [{"type": "scale", "scale": [1, 50, 50]}],
        }
    ]
    back, meta = read_image(path)
    assert meta.axes == "CYX"
    assert meta.unit == "nm"
    assert meta.spacing == pytest.approx({"Y": 100.0, "X": 100.0})
    np.testing.assert_array_equal(back, _ramp((2, 5, 6)))


def test_uncalibrated_ome_zarr_round_trip(tmp_path):
    path = write_ome_zarr(tmp_path / "p.zarr", _ramp((5, 6)), ImageMeta(axes="YX"))
    _, meta = read_image(path)
    assert meta.unit == "pixel"
    assert meta.spacing == {}


# --- labels and tables ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_label", "dtype_in", "dtype_out"),
    [(7, "int64", np.uint8), (300, "int32", np.uint16), (70_000, "uint64", np.uint32)],
)
def test_labels_round_trip_uses_smallest_unsigned_type(tmp_path, max_label, dtype_in, dtype_out):
    labels = np.zeros((3, 20, 21), dtype=dtype_in)
    labels[1, 2:5, 3:8] = 1
    labels[2, 10:15, 10:20] = max_label
    meta = ImageMeta(axes="ZYX", spacing={"Z": 2.0, "Y": 0.5, "X": 0.5}, unit="µm")
    path = write_labels(tmp_path / "labels.tif", labels, meta)

    back, back_meta = read_image(path)
    assert back.dtype == dtype_out
    np.testing.assert_array_equal(back, labels)
    assert back_meta.spacing == pytest.approx(meta.spacing)
    assert back_meta.unit == "µm"


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.full((4, 4), 1.0), "integer"),
        (np.full((4, 4), -1), "negative"),
        (np.full((4, 4), 2**33, dtype=np.int64), "uint32"),
        (np.zeros((0, 4), dtype=np.int32), "empty"),
    ],
)
def test_write_labels_refuses_bad_labels(tmp_path, labels, match):
    path = tmp_path / "bad_labels.tif"
    with pytest.raises(ImageFileError, match=match) as info:
        write_labels(path, labels, ImageMeta(axes="YX"))
    assert path.name in str(info.value)
    assert not path.exists()


def test_table_round_trip(tmp_path):
    table = pd.DataFrame(
        {"label": [1, 2, 3], "area": [10.5, 20.25, 3.0], "name": ["a", "b", "c"]},
        index=[10, 11, 12],
    )
    path = write_table(tmp_path / "out" / "objects.csv", table)
    assert path.read_text().splitlines()[0] == "label,area,name"  # no index column
    pd.testing.assert_frame_equal(pd.read_csv(path), table.reset_index(drop=True))


def test_write_table_refuses_non_dataframe(tmp_path):
    with pytest.raises(ImageFileError, match="DataFrame"):
        write_table(tmp_path / "t.csv", {"a": [1]})  # type: ignore[arg-type]


# --- overwrite ----------------------------------------------------------------------------------

_META = ImageMeta(axes="YX", spacing={"Y": 1.0, "X": 1.0}, unit="µm")


@pytest.mark.parametrize(
    ("writer", "name"),
    [
        (lambda p, d, **kw: write_image(p, d, _META, **kw), "a.tif"),
        (lambda p, d, **kw: write_labels(p, d, _META, **kw), "l.tif"),
        (lambda p, d, **kw: write_ome_zarr(p, d, _META, **kw), "z.zarr"),
        (lambda p, d, **kw: write_table(p, pd.DataFrame({"v": d.ravel()}), **kw), "t.csv"),
    ],
    ids=["image", "labels", "zarr", "table"],
)
def test_writers_refuse_to_overwrite_unless_asked(tmp_path, writer, name):
    path = tmp_path / name
    first = np.ones((3, 4), dtype=np.uint8)
    second = np.full((3, 4), 2, dtype=np.uint8)
    writer(path, first)

    with pytest.raises(ImageFileError, match="already exists") as info:
        writer(path, second)
    assert name in str(info.value)
    if name.endswith(".csv"):
        assert pd.read_csv(path)["v"].tolist() == [1] * 12
    else:
        assert read_image(path)[0].max() == 1  # untouched

    writer(path, second, overwrite=True)
    if name.endswith(".csv"):
        assert pd.read_csv(path)["v"].tolist() == [2] * 12
    else:
        np.testing.assert_array_equal(read_image(path)[0], second)
    # No temporary files left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_write_ome_zarr_never_replaces_a_plain_directory(tmp_path):
    path = tmp_path / "mine.zarr"
    path.mkdir()
    (path / "notes.txt").write_text("keep me")
    with pytest.raises(ImageFileError, match="directory"):
        write_ome_zarr(path, _ramp((3, 4)), ImageMeta(axes="YX"), overwrite=True)
    assert (path / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("data", "axes", "match"),
    [
        (np.array([[0.0, np.nan]]), "YX", "NaN"),
        (np.array([[0.0, np.inf]]), "YX", "infinite"),
        (np.zeros((0, 5)), "YX", "empty"),
        (np.zeros((3, 4, 5)), "YX", "dimensions"),
        (np.array([["a", "b"]]), "YX", "type"),
    ],
)
@pytest.mark.parametrize("writer", [write_image, write_ome_zarr], ids=["tiff", "zarr"])
def test_writers_refuse_bad_arrays(tmp_path, writer, data, axes, match):
    path = tmp_path / ("bad.tif" if writer is write_image else "bad.zarr")
    with pytest.raises(ImageFileError, match=match) as info:
        writer(path, data, ImageMeta(axes=axes))
    assert path.name in str(info.value)
    assert not path.exists()


@pytest.mark.parametrize(
    ("writer", "name"),
    [(write_image, "x.png"), (write_labels, "x.zarr"), (write_ome_zarr, "x.tif")],
)
def test_writers_refuse_wrong_suffix(tmp_path, writer, name):
    with pytest.raises(ImageFileError, match="must end in"):
        writer(tmp_path / name, _ramp((3, 4)), ImageMeta(axes="YX"))


# --- bad input files ----------------------------------------------------------------------------


def test_missing_file(tmp_path):
    _assert_raises_naming(tmp_path / "nowhere.tif", "not found")


def test_directory_that_is_not_zarr(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    _assert_raises_naming(folder, "directory")


@pytest.mark.parametrize("name", ["empty.tif", "empty.png", "empty.jpg"])
def test_empty_file(tmp_path, name):
    path = tmp_path / name
    path.touch()
    _assert_raises_naming(path, "empty")


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
@pytest.mark.parametrize(
    "make",
    [
        lambda p: tifffile.imwrite(p, _ramp((64, 64)), metadata=None),
        lambda p: tifffile.imwrite(p, _ramp((8, 32, 32)), ome=True, metadata={"axes": "ZYX"}),
        lambda p: tifffile.imwrite(p, _ramp((8, 32, 32)), imagej=True, metadata={"axes": "ZYX"}),
    ],
    ids=["plain2d", "ome3d", "imagej3d"],
)
def test_truncated_tiff(tmp_path, make, fraction):
    full = tmp_path / "full.tif"
    make(full)
    raw = full.read_bytes()
    path = tmp_path / "cut.tif"
    path.write_bytes(raw[: int(len(raw) * fraction)])
    _assert_raises_naming(path)


@pytest.mark.parametrize("name", ["c.png", "c.jpg"])
def test_truncated_png_and_jpeg(tmp_path, name):
    full = tmp_path / f"full_{name}"
    iio.imwrite(full, RNG.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    raw = full.read_bytes()
    path = tmp_path / name
    path.write_bytes(raw[: len(raw) // 2])
    _assert_raises_naming(path, "damaged")


@pytest.mark.parametrize("name", ["junk.tif", "junk.tiff", "junk.png", "junk.jpg"])
def test_corrupt_bytes(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(RNG.integers(0, 256, 2000, dtype=np.uint8).tobytes())
    _assert_raises_naming(path, "damaged")


def test_unsupported_extension_lists_supported(tmp_path):
    path = tmp_path / "image.czi"
    path.write_bytes(b"x" * 10)
    error = _assert_raises_naming(path, "unsupported")
    for suffix in SUPPORTED_SUFFIXES:
        assert suffix in str(error)


def test_zarr_that_is_a_file(tmp_path):
    path = tmp_path / "fake.zarr"
    path.write_bytes(b"not a directory")
    _assert_raises_naming(path, "directory")


def test_zarr_without_ngff_metadata(tmp_path):
    path = tmp_path / "plain.zarr"
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    group.create_array("0", data=np.ones((3, 4)))
    _assert_raises_naming(path, "multiscales")


def test_empty_zarr_directory(tmp_path):
    path = tmp_path / "empty.zarr"
    path.mkdir()
    _assert_raises_naming(path, "OME-Zarr")


def test_zero_size_tiff(tmp_path):
    path = tmp_path / "zero.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tifffile warns that such a TIFF is nonconformant
        tifffile.imwrite(path, np.zeros((0, 4), dtype=np.uint8))
    _assert_raises_naming(path)


def test_zero_size_zarr(tmp_path):
    path = tmp_path / "zero.zarr"
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    group.create_array("0", shape=(0, 4), dtype="f4")
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
            "datasets": [{"path": "0"}],
        }
    ]
    _assert_raises_naming(path, "no pixels")


def test_all_nan_image(tmp_path):
    path = tmp_path / "nan.tif"
    tifffile.imwrite(path, np.full((5, 6), np.nan, dtype=np.float32))
    _assert_raises_naming(path, "NaN")


def test_some_nan_is_still_readable(tmp_path):
    path = tmp_path / "somenan.tif"
    data = np.ones((5, 6), dtype=np.float32)
    data[0, 0] = np.nan
    tifffile.imwrite(path, data)
    back, _ = read_image(path)
    assert np.isnan(back[0, 0])
    assert np.nansum(back) == 29


def test_tiff_header_pointing_nowhere(tmp_path):
    path = tmp_path / "header_only.tif"
    path.write_bytes(b"II*\x00" + b"\xff" * 100)  # first-IFD offset beyond the end
    _assert_raises_naming(path, "damaged or truncated")


def test_errors_chain_the_library_exception(tmp_path):
    path = tmp_path / "junk.tif"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(ImageFileError) as info:
        read_image(path)
    assert info.value.__cause__ is not None
    assert info.value.path == str(path)


def test_read_table_round_trip_and_errors(tmp_path: Path) -> None:
    from tools.io import read_table

    path = write_table(tmp_path / "t.csv", pd.DataFrame({"label": [1, 2], "area_um2": [3.5, 4.0]}))
    assert read_table(path)["area_um2"].tolist() == [3.5, 4.0]
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ImageFileError, match=r"empty\.csv: the file is empty"):
        read_table(tmp_path / "empty.csv")
    with pytest.raises(ImageFileError, match="no such file"):
        read_table(tmp_path / "missing.csv")
    with pytest.raises(ImageFileError, match=r"\.csv"):
        read_table(tmp_path / "t.txt")


def test_file_sha256_changes_with_content(tmp_path: Path) -> None:
    from tools.io import file_sha256

    a = tmp_path / "a.bin"
    a.write_bytes(b"abc")
    assert file_sha256(a) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    a.write_bytes(b"abd")
    assert file_sha256(a) != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    folder = tmp_path / "store.zarr"
    folder.mkdir()
    (folder / "x").write_bytes(b"1")
    first = file_sha256(folder)
    (folder / "x").write_bytes(b"2")
    assert file_sha256(folder) != first

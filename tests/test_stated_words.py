"""Metadata stated in a request's words (agent.stated), read on wordings written for this test.

Each case is a way a microscopist says what the file is; the parsed values are the truth of
the sentence. Sentences that give numbers about something else must give nothing.
"""

from __future__ import annotations

import pytest

from agent.stated import axes_in, statement_in


@pytest.mark.parametrize(("text", "ndim", "expected"), [
    ("the image has a pixel size of 0.325 um", 2, {"pixel_size": 0.325, "unit": "µm"}),
    ("pixel size: 65 nm. count the spots", 2, {"pixel_size": 65.0, "unit": "nm"}),
    ("acquired at 0.16 µm/px", 2, {"pixel_size": 0.16, "unit": "µm"}),
    ("0.1 micron per pixel, nuclei area?", 2, {"pixel_size": 0.1, "unit": "µm"}),
    ("imaged with 0.4-µm pixels", 2, {"pixel_size": 0.4, "unit": "µm"}),
    ("the lateral resolution is 0.25 micrometres", 2, {"pixel_size": 0.25, "unit": "µm"}),
    ("cells.tif was sampled at 0.3 µm; mean area", 2, {"pixel_size": 0.3, "unit": "µm"}),
    ("pixel size of cells_03.tif = 0.5 µm", 2, {"pixel_size": 0.5, "unit": "µm"}),
    ("voxel size 2 x 0.2 x 0.2 µm (z, y, x)", 3,
     {"pixel_size": [2.0, 0.2, 0.2], "unit": "µm", "axes": "ZYX"}),
    ("confocal stack, 0.5 um steps, 0.1 um pixels", 3,
     {"pixel_size": 0.1, "unit": "µm", "z_step": 0.5, "axes": "ZYX"}),
    ("planes every 2 µm; xy 0.3 µm", 3,
     {"pixel_size": 0.3, "unit": "µm", "z_step": 2.0, "axes": "ZYX"}),
    ("the sections are 1.5 µm apart", 3, {"z_step": 1.5, "unit": "µm", "axes": "ZYX"}),
    ("a time-lapse taken every 2 min", 3,
     {"time_step": 2.0, "time_unit": "min", "axes": "TYX"}),
    ("30 s between frames; mean speed?", 3, {"time_step": 30.0, "time_unit": "s",
                                              "axes": "TYX"}),
    ("one image per 10 seconds, with 15-minute intervals", 3,
     {"time_step": 15.0, "time_unit": "min", "axes": "TYX"}),
    ("track the nuclei through the recording", 3, {"axes": "TYX"}),
    ("this is a video of migrating cells", 3, {"axes": "TYX"}),
    ("it is a 3D volume, not a movie", 3, {"axes": "ZYX"}),
])
def test_stated_metadata_is_read(text, ndim, expected):
    assert statement_in(text, ndim=ndim) == expected


@pytest.mark.parametrize("text", [
    "count the objects larger than 100 µm² in a.tif",
    "keep the nuclei bigger than 50 px",
    "remove spots closer than 2 µm to the border",
    "what is a good pixel size for confocal imaging?",
    "how many nuclei are in plate3.tif",
])
def test_numbers_about_something_else_state_nothing(text):
    assert statement_in(text, ndim=2) == {}


def test_axes_only_for_three_dimensional_images_and_only_when_unambiguous():
    assert axes_in("a movie of a z-stack", ndim=3) is None  # both said: the file decides
    assert axes_in("a time-lapse", ndim=2) is None
    assert axes_in("a time-lapse", ndim=4) is None
    assert axes_in("frames over time, not z", ndim=3) == "TYX"

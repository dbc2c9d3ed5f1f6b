"""bia batch: pipelines from files and sessions, per-file failures, resuming after interruption."""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from stardist.matching import matching

import tools
from agent.batch import (
    MANIFEST,
    batch_main,
    find_images,
    process_file,
    read_manifest,
    resolve_pipeline,
    run_batch,
)
from agent.cli import build_parser
from agent.pipeline import PipelineError, Step, build_pipeline, load_pipeline, replay
from tests.scripted import plan
from tools.io import read_image, write_image, write_labels
from tools.synthetic import nuclei_2d
from tools.workspace import Workspace

PARAMS = {"spot_sigma": 3.0, "outline_sigma": 1.0}
PIPELINE = [
    {"tool": "voronoi_otsu_labeling", "arguments": {"image": "input", **PARAMS},
     "outputs": ["labels"]},
    {"tool": "measure_objects", "arguments": {"labels": "labels", "image": "input"},
     "outputs": ["table"]},
]
N_IMAGES = 3

SESSION_SCRIPT = '''#!/usr/bin/env python
"""Repeat a bia session without the assistant."""
import sys
from pathlib import Path

from tools.io import file_sha256, read_image, write_labels, write_table
from tools.measure import measure_objects
from tools.segment import voronoi_otsu_labeling
from tools.types import ImageMeta, PixelSize

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "reproduced"

def check(path, sha256):
    return Path(path)

# Inputs
plate1, _ = read_image(check(Path('/data/plate1.tif'), 'abc'))

# Calls, with the exact parameters the session used
# 1. voronoi_otsu_labeling
plate1_labels = voronoi_otsu_labeling(image=plate1, spot_sigma=3.0, outline_sigma=1.0)
# 2. measure_objects
plate1_labels_measurements = measure_objects(labels=plate1_labels, image=plate1, \
pixel_size=PixelSize(spacing=(0.5, 0.5), unit='µm'))

# Outputs
write_labels(OUT / 'plate1_labels.ome.tif', plate1_labels, ImageMeta(axes='YX'), overwrite=True)
write_table(OUT / 'plate1_labels_measurements.csv', plate1_labels_measurements, overwrite=True)
'''


@pytest.fixture(scope="module")
def registry():
    return tools.load_all()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three small synthetic nuclei images with their truth, and one corrupt TIFF."""
    images = tmp_path / "images"
    truth = tmp_path / "truth"
    for i in range(N_IMAGES):
        data = nuclei_2d((160, 160), n_nuclei=14 + 4 * i, seed=100 + i)
        write_image(images / f"well{i}.tif", data.image, data.meta)
        write_labels(truth / f"well{i}.tif", data.labels, data.meta)
    (images / "zz_broken.tif").write_bytes(b"II*\x00" + b"\x00\xff" * 40)  # a cut-off TIFF
    (images / "notes.txt").write_text("not an image")
    return images


@pytest.fixture
def pipeline_file(tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(PIPELINE))
    return path


# -- pipelines -------------------------------------------------------------------------------


def test_pipeline_file_and_session_script_give_the_same_steps(tmp_path, pipeline_file,
                                                               registry) -> None:
    from_file = load_pipeline(pipeline_file, registry)
    script = tmp_path / "session" / "session.py"
    script.parent.mkdir()
    script.write_text(SESSION_SCRIPT, encoding="utf-8")
    from_script = load_pipeline(script, registry)
    assert from_file.input == "input" and from_script.input == "plate1"
    for a, b in zip(from_file.steps, from_script.steps, strict=True):
        assert a.tool == b.tool
        assert {k: v for k, v in a.arguments.items() if k in PARAMS} == \
            {k: v for k, v in b.arguments.items() if k in PARAMS}
    # the recorded pixel size is dropped: every file brings its own calibration
    assert "pixel_size" not in from_script.steps[1].arguments
    assert from_script.steps[1].arguments["labels"] == "plate1_labels"


def test_session_provenance_is_preferred_and_matches_a_real_call_log(tmp_path, registry) -> None:
    image = nuclei_2d((128, 128), n_nuclei=10, seed=5)
    write_image(tmp_path / "cells.tif", image.image, image.meta)
    ws = Workspace([tmp_path], output_root=tmp_path / "out")
    seg = registry.run(ws, "voronoi_otsu_labeling", {"image": "cells.tif", **PARAMS})
    registry.run(ws, "measure_objects", {"labels": seg.outputs[0], "image": "cells"})
    folder = tmp_path / "exported"
    folder.mkdir()
    (folder / "session.py").write_text("# script\n")
    (folder / "provenance.json").write_text(json.dumps(ws.provenance()))
    pipeline = load_pipeline(folder / "session.py", registry)
    assert [s.tool for s in pipeline.steps] == ["voronoi_otsu_labeling", "measure_objects"]
    assert pipeline.input == "cells"
    # replaying it on the same image gives the same table
    ws2 = Workspace([tmp_path], output_root=tmp_path / "out2")
    names = replay(pipeline, ws2, "cells.tif", registry)
    again = ws2.artifacts[names[pipeline.steps[-1].outputs[0]]].data
    pd.testing.assert_frame_equal(again, ws.artifacts[ws.calls[-1].outputs[0]].data)


def test_default_output_names_and_bad_pipelines(tmp_path, registry) -> None:
    pipeline = build_pipeline(
        [Step("voronoi_otsu_labeling", {"image": "raw"}),
         Step("measure_objects", {"labels": "step1"})], registry)
    assert pipeline.steps[0].outputs == ["step1"] and pipeline.input == "raw"
    with pytest.raises(PipelineError, match="exactly one input image"):
        build_pipeline([Step("measure_objects", {"labels": "a", "image": "b"})], registry)
    with pytest.raises(PipelineError, match="Unknown tool 'segment_everything'"):
        build_pipeline([Step("segment_everything", {"image": "a"})], registry)
    with pytest.raises(PipelineError, match="lists 2 outputs"):
        build_pipeline([Step("voronoi_otsu_labeling", {"image": "a"}, ["x", "y"])], registry)
    bad = tmp_path / "bad.json"
    bad.write_text("[{\"tool\": ")
    with pytest.raises(PipelineError, match="cannot be read"):
        load_pipeline(bad, registry)
    with pytest.raises(PipelineError, match="no pipeline file"):
        load_pipeline(tmp_path / "missing.json", registry)


def test_yaml_pipeline(tmp_path, registry) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("steps:\n  - tool: voronoi_otsu_labeling\n    arguments: {image: input}\n")
    assert load_pipeline(path, registry).steps[0].outputs == ["step1"]


# -- per file --------------------------------------------------------------------------------


def test_process_file_reports_a_corrupt_file_without_raising(folder, pipeline_file,
                                                             registry, tmp_path) -> None:
    spec = load_pipeline(pipeline_file, registry).to_dict()
    record = process_file(str(folder / "zz_broken.tif"), spec, str(tmp_path / "o1"))
    assert record["status"] == "failed" and "zz_broken.tif" in record["error"]
    good = process_file(str(folder / "well0.tif"), spec, str(tmp_path / "o2"))
    assert good["status"] == "done" and good["rows"] > 5
    assert Path(good["outputs"]["labels"]).exists()


def test_find_images_skips_other_files(folder) -> None:
    assert [p.name for p in find_images(folder)] == [
        "well0.tif", "well1.tif", "well2.tif", "zz_broken.tif"]
    assert [p.name for p in find_images(folder, "well1*")] == ["well1.tif"]


# -- the batch on a cluster ------------------------------------------------------------------


@pytest.mark.slow
def test_batch_survives_failures_and_resumes_after_interruption(folder, pipeline_file,
                                                                tmp_path, registry) -> None:
    out = tmp_path / "out"
    files = find_images(folder)
    pipeline = resolve_pipeline(str(pipeline_file), files, out)

    def interrupt(record):
        raise KeyboardInterrupt  # Ctrl-C in the driver right after the first file

    first = run_batch(pipeline, files, out, n_workers=1, progress=False, on_result=interrupt)
    assert first.interrupted
    assert len(first.done) + len(first.failed) == 1
    before = read_manifest(out)
    assert len(before) == 1
    finished = next(iter(before.values()))

    second = run_batch(pipeline, files, out, n_workers=2, progress=False)
    assert not second.interrupted
    if finished["status"] == "done":
        assert second.skipped == [finished["file"]]  # not recomputed
    assert sorted(second.done + second.skipped) == [
        "well0.tif", "well1.tif", "well2.tif"]
    assert second.failed == ["zz_broken.tif"] or first.failed == ["zz_broken.tif"]
    records = read_manifest(out)
    assert "TIFF" in records["zz_broken.tif"]["error"]
    assert len((out / MANIFEST).read_text().splitlines()) == len(files)

    table = pd.read_csv(out / "results.csv")
    assert list(table.columns[:2]) == ["file", "label"]
    assert sorted(table["file"].unique()) == ["well0.tif", "well1.tif", "well2.tif"]
    for i in range(N_IMAGES):
        name = f"well{i}.tif"
        truth, _ = read_image(folder.parent / "truth" / name)
        labels, _ = read_image(Path(records[name]["outputs"]["labels"]))
        assert (table["file"] == name).sum() == records[name]["rows"] == labels.max()
        assert matching(truth.astype(np.int32), labels.astype(np.int32), thresh=0.5).f1 > 0.6
    assert table["area_um2"].gt(0).all()

    # a different analysis into the same folder is refused, not mixed in
    other = tmp_path / "other.json"
    other.write_text(json.dumps([{**PIPELINE[0], "arguments": {"image": "input"}}]))
    with pytest.raises(PipelineError, match="different analysis"):
        run_batch(resolve_pipeline(str(other), files, out), files, out, progress=False)


def test_cli_errors_are_reported_not_raised(tmp_path, pipeline_file, capsys) -> None:
    parser = build_parser(["batch"])
    args = parser.parse_args(["batch", str(pipeline_file), str(tmp_path / "nowhere"),
                              "--out", str(tmp_path / "o")])
    assert batch_main(args) == 2
    assert "is not a folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    args = parser.parse_args(["batch", str(pipeline_file), str(empty), "--out",
                              str(tmp_path / "o")])
    assert batch_main(args) == 2
    assert "no image files" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("agent.planner") is None,
                    reason="the agent (agent.planner) lands from its own branch")
def test_request_becomes_a_pipeline_on_the_first_image(folder, tmp_path, registry) -> None:


    from agent.batch import pipeline_from_request

    backends = importlib.import_module("agent.backends")
    ModelInfo, ScriptedChatModel = backends.ModelInfo, backends.ScriptedChatModel


    model = ScriptedChatModel(replies=[plan(
        "labels1 = voronoi_otsu_labeling(image=well0, spot_sigma=3.0, outline_sigma=1.0)",
        "table2 = measure_objects(labels=labels1, image=well0)",
        "answer(count(labels1), show(table2))")])
    info = ModelInfo("scripted", "scripted")
    pipeline = pipeline_from_request("segment the nuclei and measure them",
                                     folder / "well0.tif", tmp_path / "o", model=model,
                                     model_info=info)
    assert [s.tool for s in pipeline.steps] == ["voronoi_otsu_labeling", "measure_objects"]
    assert pipeline.steps[0].arguments["spot_sigma"] == 3.0
    ws = Workspace([folder], output_root=tmp_path / "w")
    names = replay(pipeline, ws, "well1.tif", registry)
    assert len(ws.artifacts[names[pipeline.steps[-1].outputs[0]]].data) > 5


@pytest.mark.skipif(importlib.util.find_spec("agent.session") is None,
                    reason="the agent's Session lands from its own branch")
def test_a_real_exported_session_reads_the_same_with_or_without_provenance(tmp_path,
                                                                           registry) -> None:
    session_module = importlib.import_module("agent.session")
    data = nuclei_2d((128, 128), n_nuclei=10, seed=1)
    write_image(tmp_path / "a.tif", data.image, data.meta)
    ws = Workspace([tmp_path], output_root=tmp_path / "out")
    denoised = registry.run(ws, "denoise_nlm", {"image": "a.tif"})
    seg = registry.run(ws, "voronoi_otsu_labeling", {"image": denoised.outputs[0], **PARAMS})
    registry.run(ws, "measure_objects", {"labels": seg.outputs[0], "image": "a"})
    exported = session_module.Session(ws, registry=registry).export(tmp_path / "exported")
    with_provenance = load_pipeline(exported.script, registry)
    exported.provenance.unlink()
    from_script_alone = load_pipeline(exported.script, registry)
    assert with_provenance.to_dict()["steps"] == from_script_alone.to_dict()["steps"]
    assert [s.tool for s in from_script_alone.steps] == [
        "denoise_nlm", "voronoi_otsu_labeling", "measure_objects"]
    assert from_script_alone.steps[1].arguments["spot_sigma"] == PARAMS["spot_sigma"]

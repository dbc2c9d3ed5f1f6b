"""Blob counting: ground truth of the image sets, answer parsing, metrics, the VLM client path."""

from __future__ import annotations

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from evals import blob_bench
from evals.blob_bench import metrics, parse_count
from evals.models import OpenAIChatModel, image_to_data_url
from tools.errors import InputError


@pytest.mark.parametrize(("text", "expected"), [
    ("42", 42), ("**42**", 42), (" 42.\n", 42), ("There are 17 blobs.", 17), ("1,024", 1024),
    ("twelve", 12), ("Thirty-four", 34), ("`7`", 7), ("I count 5 blobs, yes 5.", 5),
    ("between 10 and 12", None), ("I cannot count them.", None), ("-3", None),
    ("about 4.5", None), ("", None), (None, None),
])
def test_parse_count(text: str | None, expected: int | None) -> None:
    assert parse_count(text) == expected


def test_unparsed_answers_are_failures_not_dropped() -> None:
    records = [
        {"truth": 10, "predicted": 10, "parsed": True},
        {"truth": 10, "predicted": 12, "parsed": True},
        {"truth": 10, "predicted": None, "parsed": False},
    ]
    m = metrics(records)
    assert m["n"] == 3 and m["parse_failures"] == 1
    assert m["exact"] == pytest.approx(1 / 3)
    assert m["within_1"] == pytest.approx(1 / 3)
    assert m["mae"] == pytest.approx((0 + 2 + 10) / 3)
    assert m["bias"] == pytest.approx((0 + 2 - 10) / 3)


def test_synthetic_set_truth_comes_from_the_generator() -> None:
    items = list(blob_bench.load_set("synthetic").values())
    assert len(items) == 24
    counts = [i.count for i in items]
    assert min(counts) == 1 and max(counts) == 100
    assert any("overlap" in i.name for i in items) and any("border" in i.name for i in items)
    for item in items:
        assert item.count_inner is not None and item.count_inner <= item.count
        if "inside" in item.name:
            assert item.count_inner == item.count
    assert any(i.count_inner < i.count for i in items if "border" in i.name)


def test_coins_count_is_24_by_two_independent_segmentations() -> None:
    from scipy import ndimage as ndi
    from skimage import data, filters, measure, morphology, segmentation

    coins = data.coins()
    markers = np.zeros_like(coins)
    markers[coins < 30], markers[coins > 150] = 1, 2
    regions = segmentation.watershed(filters.sobel(coins), markers) == 2
    regions = ndi.binary_fill_holes(regions)
    labels = measure.label(regions)
    areas = np.bincount(labels.ravel())[1:]
    assert int((areas > 50).sum()) == 24
    local = coins > filters.threshold_local(coins, 151, offset=-10)
    local = ndi.binary_fill_holes(morphology.opening(local, morphology.disk(3)))
    areas = np.bincount(measure.label(local).ravel())[1:]
    assert int((areas > 300).sum()) == 24
    assert blob_bench.load_set("coins")["coins"].count == 24


def test_nuclei_count_is_the_number_of_distinct_labels() -> None:
    item = blob_bench.load_set("nuclei")["stardist_nuclei_2d"]
    assert item.count == 125  # the mask's largest label is 183: numbers have gaps
    assert item.count_inner == 112


def test_classical_counter_is_exact_on_clean_synthetic_images() -> None:
    items = blob_bench.load_set("synthetic")
    clean = [i for i in items.values() if "apart_inside" in i.name]
    assert clean
    for item in clean:
        assert blob_bench.classical_count(item.image) == item.count


def test_run_writes_results_report_and_plots(tmp_path: Path) -> None:
    summary = blob_bench.run_blob_bench(
        tmp_path, ["classical", "constant:24", "scripted:I see many blobs"], sets=["coins"],
        variants=["classic"], samples=2, workers=1)
    groups = {g["counter"]: g for g in summary["groups"]}
    assert groups["constant:24"]["exact"] == 1.0 and groups["constant:24"]["n"] == 1
    assert groups["scripted:I see many blobs"]["n"] == 2
    assert groups["scripted:I see many blobs"]["parse_failures"] == 2
    assert groups["scripted:I see many blobs"]["mae"] == 24
    report = (tmp_path / "report.md").read_text()
    assert "Blob counting" in report and "bland_altman_classical.png" in report
    assert (tmp_path / "scatter_constant_24.png").stat().st_size > 1000
    rerun = blob_bench.run_blob_bench(
        tmp_path, ["constant:24"], sets=["coins"], variants=["classic"], workers=1)
    assert rerun["groups"][0]["n"] == 1
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 4


def test_bad_configuration_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown prompt variant"):
        blob_bench.run_blob_bench(tmp_path, ["classical"], variants=["nope"])
    with pytest.raises(InputError, match="unknown image set"):
        blob_bench.run_blob_bench(tmp_path, ["classical"], sets=["nope"], workers=1)
    with pytest.raises(InputError, match="unknown counter"):
        blob_bench.run_blob_bench(tmp_path, ["oracle"], sets=["coins"], workers=1)


class _FakeServer(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []

    def do_GET(self) -> None:
        data = json.dumps({"object": "list", "data": [
            {"id": "fake-vlm", "object": "model", "created": 0, "owned_by": "test"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        answer = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                  "choices": [{"index": 0, "finish_reason": "stop",
                               "message": {"role": "assistant", "content": "7"}}]}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def test_vision_model_gets_the_image_as_a_base64_data_url() -> None:
    from PIL import Image as PILImage

    server = HTTPServer(("127.0.0.1", 0), _FakeServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        model = OpenAIChatModel("fake-vlm", f"http://127.0.0.1:{server.server_port}/v1")
        image = np.zeros((20, 30), np.float32)
        image[5:10, 5:10] = 1.0
        prompt = blob_bench.PROMPTS["classic"]
        assert model.generate(prompt, image=image) == "7"
        sent = _FakeServer.requests[-1]
        content = sent["messages"][0]["content"]
        assert content[1] == {"type": "text", "text": prompt}
        url = content[0]["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        png = PILImage.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        decoded = np.asarray(png)
        assert decoded.shape == (20, 30) and decoded[7, 7] == 255 and decoded[0, 0] == 0
    finally:
        server.shutdown()


def test_data_url_refuses_stacks() -> None:
    with pytest.raises(InputError, match="2D or RGB"):
        image_to_data_url(np.zeros((3, 4, 5, 6)))


@pytest.fixture
def fake_server():
    server = HTTPServer(("127.0.0.1", 0), _FakeServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1"
    finally:
        server.shutdown()


def test_a_vision_model_runs_with_one_flag(tmp_path: Path, fake_server: str, capsys) -> None:
    from agent.cli import main

    _FakeServer.requests.clear()
    assert main(["bench", "blobs", "--counters", "constant:24", "--vlm", fake_server,
                 "--sets", "coins", "--variants", "classic", "--samples", "2", "--workers", "1",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "vlm:fake-vlm" in out
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    answers = [r for r in records if r["counter"] == "vlm:fake-vlm"]
    assert [r["predicted"] for r in answers] == [7, 7]  # what the server said, scored vs 24
    assert len(_FakeServer.requests) == 2
    assert _FakeServer.requests[0]["model"] == "fake-vlm"
    assert (tmp_path / "bland_altman_vlm_fake-vlm.png").stat().st_size > 1000


def test_resolve_vlm_forms() -> None:
    from evals.models import resolve_vlm

    assert resolve_vlm("m@http://h:1/v1") == ("m", "http://h:1/v1")
    assert resolve_vlm("gpt-4o") == ("gpt-4o", None)
    with pytest.raises(InputError, match="--vlm"):
        resolve_vlm(" ")


def test_classic_set_needs_its_image_and_carries_the_published_row(tmp_path: Path) -> None:
    from skimage import data as skdata

    with pytest.raises(InputError, match="--classic-image"):
        blob_bench.classic_set()
    # A stand-in with a known Otsu count: the real classic blobs.tif is not shipped.
    image = (skdata.binary_blobs(length=128, blob_size_fraction=0.1, rng=3) * 200 + 20)
    path = tmp_path / "blobs.tif"
    import tifffile

    tifffile.imwrite(path, image.astype(np.uint8))
    truth = blob_bench.otsu_count(image)
    assert truth > 5
    summary = blob_bench.run_blob_bench(tmp_path / "out", [f"constant:{truth}"],
                                        sets=["classic"], variants=["classic"], workers=1,
                                        classic_image=path)
    assert summary["groups"][0]["exact"] == 1.0
    published = summary["published"]
    assert published and published[0]["mean"] == 55.4 and published[0]["truth"] == 64
    assert "gpt-4o (published)" in (tmp_path / "out" / "report.md").read_text()


def test_agent_counter_counts_with_the_planner_and_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("agent.planner")
    from agent.backends import ModelInfo, ScriptedChatModel

    plan = "labels = voronoi_otsu_labeling(image=sample)\nanswer(count(labels))\n"
    model = ScriptedChatModel(replies=[plan] * 4)
    info = ModelInfo("scripted", "scripted-planner")
    monkeypatch.setattr(blob_bench, "_agent_model", lambda backend, base_url: (model, info))
    items = blob_bench.load_set("synthetic")
    item = next(i for i in items.values() if "apart_inside" in i.name and i.count > 5)
    text = blob_bench.agent_count("scripted", blob_bench.PROMPTS["classic"], item.image)
    # The count comes from the tools run on the real image, not from the model.
    assert parse_count(text) == item.count


def test_model_counters_can_be_reported_without_asking_them(tmp_path: Path) -> None:
    blob_bench.run_blob_bench(tmp_path, ["scripted:12"], sets=["coins"], variants=["classic"],
                              samples=1, workers=1)
    text = (tmp_path / "results.jsonl").read_text()
    (tmp_path / "results.jsonl").write_text(text.replace('"scripted:12"', '"agent:x"'))
    summary = blob_bench.run_blob_bench(tmp_path, ["agent:x", "vlm:y"], sets=["coins"],
                                        variants=["classic"], samples=2, workers=1,
                                        ask_models=False)
    groups = {g["counter"]: g for g in summary["groups"]}
    assert groups["agent:x"]["n"] == 1 and "vlm:y" not in groups  # nothing was asked


def test_an_agent_reply_without_a_count_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("agent.planner")
    from agent.backends import ModelInfo, ScriptedChatModel

    # A plan that measures but answers no count: the failure text mentions line numbers.
    plan = ("labels = voronoi_otsu_labeling(image=sample)\n"
            "table = measure_objects(labels=labels, image=sample)\nanswer(mean(table, \"area\"))\n")
    model = ScriptedChatModel(replies=[plan] * 4)
    monkeypatch.setattr(blob_bench, "_agent_model",
                        lambda backend, base_url: (model, ModelInfo("scripted", "s")))
    blob_bench.load_set.cache_clear()
    item = next(iter(blob_bench.load_set("coins").values()))
    job = {"counter": "agent:s", "variant": "classic", "set": "coins", "image": item.name,
           "sample": 0, "truth": "all", "prompt": blob_bench.PROMPTS["classic"]}
    record = blob_bench.count_job(job)
    assert not record["parsed"] and record["predicted"] is None
    assert "no count" in record["error"]
    assert "measure_objects" in record["plan"]  # what the agent planned is kept

"""Plans from OpenAI-compatible servers: a JSON schema built from the registry, structured output
with a plain-text fallback, and images for vision models.

A local HTTP server speaks the chat completions protocol; only its replies are written here. The
tools are real and run on generated images with known answers.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import numpy as np
import pytest
from PIL import Image as PILImage

from agent.backends import BackendError, complete, image_data_url, make_chat_model
from agent.plan import PlanSyntaxError, parse_plan
from agent.plan_schema import plan_schema, plan_text
from agent.planner import Agent
from agent.retrieval import KeywordRetriever
from agent.session import Session
from tests import test_agent_loop as loop
from tools.registry import Registry
from tools.types import ImageMeta
from tools.workspace import Workspace

DISCS, PIXEL_UM, TOOLS = loop.DISCS, loop.PIXEL_UM, loop.TOOLS
data_dir = loop.data_dir  # the fixtures: six discs of known size in cells.tif, a few real tools
registry = loop.registry
COUNT_AND_AREA_TEXT = loop.COUNT_AND_AREA
COUNT_AND_AREA = {"plan": {
    "steps": [{"tool": "threshold_labeling", "arguments": {"image": "cells"}},
              {"tool": "measure_objects", "arguments": {"labels": "labels1", "image": "cells"}}],
    "answer": [{"op": "count", "of": "labels1"},
               {"op": "mean", "of": "table2", "column": "area", "where": None}]}}
"""The plan of test_agent_loop's COUNT_AND_AREA_TEXT, as JSON."""


# -- a chat completions server ----------------------------------------------------------------


class _Server(BaseHTTPRequestHandler):
    """Answers each POST with the next of ``replies`` (a text, or a function of the request
    body returning a text, or ``(status, error message)``); records every body."""

    replies: ClassVar[list[Any]] = []
    bodies: ClassVar[list[dict[str, Any]]] = []

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        reply = type(self).replies.pop(0)
        if callable(reply):
            reply = reply(body)
        if isinstance(reply, tuple):
            status, message = reply
            self._send(status, {"error": {"message": message, "type": "invalid_request_error",
                                          "param": "response_format", "code": None}})
            return
        self._send(200, {
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": reply}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Callable[..., str]]:
    """``server(*replies)`` queues the replies and gives the base URL."""
    httpd = HTTPServer(("127.0.0.1", 0), _Server)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Server.bodies.clear()

    def start(*replies: Any) -> str:
        _Server.replies[:] = list(replies)
        return f"http://127.0.0.1:{httpd.server_port}/v1"

    try:
        yield start
    finally:
        httpd.shutdown()
        _Server.replies.clear()


@pytest.fixture(autouse=True)
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BIA_MODEL", "BIA_BASE_URL", "BIA_API_KEY", "OPENAI_BASE_URL",
                 "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BIA_CONFIG", str(tmp_path / "none.toml"))


def make_agent(data_dir: Path, url: str, registry: Registry, *, model: str = "qwen2.5:7b",
               vision: bool | None = None) -> Agent:
    chat, info = make_chat_model(model, base_url=url, vision=vision)
    workspace = Workspace([data_dir], output_root=data_dir.parent / "out")
    return Agent(chat, session=Session(workspace), registry=registry, model_info=info,
                 retriever=KeywordRetriever(registry), examples=lambda request, k=3: [])


def user_content(body: dict[str, Any]) -> Any:
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


# -- the schema -----------------------------------------------------------------------------------


def test_the_schema_names_each_tool_with_its_own_parameters_types_and_enums(
        registry: Registry) -> None:
    s = plan_schema(registry, variables={"cells": "image"})
    defs = s.schema["$defs"]
    steps = s.schema["properties"]["plan"]["anyOf"][0]["properties"]["steps"]
    assert steps["maxItems"] == 8
    assert {r["$ref"] for r in steps["items"]["anyOf"]} == {
        f"#/$defs/step_{name}" for name in TOOLS}
    voronoi = defs["step_voronoi_otsu_labeling"]
    assert voronoi["properties"]["tool"] == {"type": "string", "enum": ["voronoi_otsu_labeling"]}
    arguments = voronoi["properties"]["arguments"]
    assert arguments["additionalProperties"] is False
    assert set(arguments["properties"]) == {"image", "spot_sigma", "outline_sigma", "backend",
                                            "min_size"}  # pixel_size comes from the image
    assert arguments["required"] == list(arguments["properties"])  # strict: nulls for optional
    backend = arguments["properties"]["backend"]["anyOf"]
    assert {"type": "string", "enum": ["auto", "skimage", "clesperanto"]} in backend
    assert {"type": "null"} in backend
    assert {"type": "integer", "minimum": 1} in arguments["properties"]["min_size"]["anyOf"]
    # variables by kind: a segmenter takes images only; measure_objects labels only
    assert arguments["properties"]["image"] == {"$ref": "#/$defs/ref_intensity"}
    assert "cells" in defs["ref_intensity"]["enum"] and "image1" in defs["ref_intensity"]["enum"]
    assert not any(n.startswith("labels") for n in defs["ref_intensity"]["enum"])
    measure = defs["step_measure_objects"]["properties"]["arguments"]["properties"]
    assert measure["labels"] == {"$ref": "#/$defs/ref_labels"}
    assert defs["ref_labels"]["enum"] == [f"labels{i}" for i in range(1, 9)]
    assert s.response_format()["json_schema"]["strict"] is True
    # patterns in the subset every server's converter reads (llama.cpp's GBNF refuses "\.")
    patterns = re.findall(r'"pattern": "([^"]*)"', json.dumps(s.schema))
    assert patterns and not any("\\" in p for p in patterns)


def test_the_schema_makes_unknown_tools_parameters_and_wrong_kinds_impossible(
        registry: Registry) -> None:
    # as the planner builds it: optional values only where the request states them
    s = plan_schema(registry, variables={"cells": "image"}, parameters=lambda t: (
        ["backend"] if t.name == "voronoi_otsu_labeling" else []))
    validator = jsonschema.Draft202012Validator(s.schema)
    assert validator.is_valid(COUNT_AND_AREA)
    assert validator.is_valid({"plan": {"reply": "Otsu picks a threshold [1]."}})

    def with_step(step: dict[str, Any]) -> dict[str, Any]:
        return {"plan": {"steps": [step], "answer": [{"op": "count", "of": "labels1"}]}}

    good = {"tool": "threshold_labeling", "arguments": {"image": "cells"}}
    assert not validator.is_valid(with_step({**good, "tool": "segment_everything"}))
    assert not validator.is_valid(with_step(
        {**good, "arguments": {"image": "cells", "spot_size": 3}}))
    # a label image where a segmenter wants an intensity image; an undefined name
    assert not validator.is_valid(with_step({**good, "arguments": {"image": "labels1"}}))
    assert not validator.is_valid(with_step({**good, "arguments": {"image": "../etc/passwd"}}))
    # required parameter missing, enum value outside the Literal
    assert not validator.is_valid(with_step({"tool": "measure_objects", "arguments": {}}))
    voronoi = {"tool": "voronoi_otsu_labeling", "arguments": {"image": "cells",
                                                               "backend": "skimage"}}
    assert validator.is_valid(with_step(voronoi))
    assert not validator.is_valid(with_step({**voronoi, "arguments": {"image": "cells",
                                                                      "backend": "gpu"}}))
    # strict: an optional argument not wanted is null, not left out; unstated ones are absent
    assert not validator.is_valid(with_step({**voronoi, "arguments": {"image": "cells"}}))
    assert not validator.is_valid(with_step({**voronoi, "arguments": {
        "image": "cells", "backend": None, "spot_sigma": 2.0}}))
    # a statistic of a label image; a count of an image
    assert not validator.is_valid({"plan": {"steps": [good], "answer": [
        {"op": "mean", "of": "labels1", "column": "area", "where": None}]}})
    assert not validator.is_valid({"plan": {"steps": [], "answer": [
        {"op": "count", "of": "cells"}]}})
    assert validator.is_valid({"plan": {"steps": [], "answer": [{"op": "show", "of": "cells"}]}})
    hiding = plan_schema(registry, variables={"cells": "image"}, inputs=["cells"])
    assert not jsonschema.Draft202012Validator(hiding.schema).is_valid(
        {"plan": {"steps": [], "answer": [{"op": "show", "of": "cells"}]}})  # their own file


def test_only_stated_parameters_and_no_reply_when_files_are_named(registry: Registry) -> None:
    s = plan_schema(registry, ["voronoi_otsu_labeling"], variables={"cells": "image"},
                    allow_reply=False, parameters=lambda t: ["spot_sigma"])
    arguments = s.schema["$defs"]["step_voronoi_otsu_labeling"]["properties"]["arguments"]
    assert set(arguments["properties"]) == {"image", "spot_sigma"}
    assert "anyOf" not in s.schema["properties"]["plan"]  # the plan branch only
    validator = jsonschema.Draft202012Validator(s.schema)
    assert not validator.is_valid({"plan": {"reply": "no tools needed"}})
    # nothing bound and no reply allowed: nothing can be written
    with pytest.raises(ValueError, match="no plan can be written"):
        plan_schema(registry, ["measure_objects"], allow_reply=False)


def test_json_becomes_the_plan_text_the_checker_reads(registry: Registry) -> None:
    text = plan_text(json.dumps(COUNT_AND_AREA), registry)
    assert text == COUNT_AND_AREA_TEXT
    assert parse_plan(text, registry, {"cells": "image"}).render() == text
    nulls = {"steps": [{"tool": "voronoi_otsu_labeling", "arguments": {
        "image": "cells", "spot_sigma": 2.5, "backend": None}}],
        "answer": [{"op": "count", "of": "labels1", "where": None}]}
    assert plan_text("```json\n" + json.dumps(nulls) + "\n```", registry) == (
        "labels1 = voronoi_otsu_labeling(image=cells, spot_sigma=2.5)\nanswer(count(labels1))")
    where = {"plan": {"steps": [], "answer": [
        {"op": "count", "of": "t", "where": "area > 100"}]}}
    assert plan_text(json.dumps(where), registry) == 'answer(count(t, where="area > 100"))'
    reply = plan_text(json.dumps({"plan": {"reply": 'Otsu "picks" µm² [1]'}}), registry)
    assert parse_plan(reply, registry).reply == 'Otsu "picks" µm² [1]'
    # a server that ignored the schema and wrote plan text: passed on to the same checker
    assert plan_text(COUNT_AND_AREA_TEXT, registry) == COUNT_AND_AREA_TEXT


@pytest.mark.parametrize(("reply", "error"), [
    ('{"plan": {"steps": [', "not valid JSON"),
    ('{"steps": "threshold"}', "steps and answer must be lists"),
    ('{"plan": {"steps": [], "answer": []}}', "the plan has no answer"),
    ('{"hello": 1}', "JSON but not a plan"),
    ('{"plan": {"steps": [{"tool": "threshold labeling"}], "answer": []}}', "the plan has no"),
    ('{"plan": {"steps": [{"tool": "threshold labeling"}], "answer": [{"op": "count", '
     '"of": "x"}]}}', "the tool must be a name"),
    ('{"plan": {"steps": [], "answer": [{"op": "average", "of": "x"}]}}', "unknown op"),
    ('{"plan": {"reply": ""}}', "non-empty text"),
])
def test_a_reply_that_is_not_a_plan_is_a_typed_error(registry: Registry, reply: str,
                                                     error: str) -> None:
    with pytest.raises(PlanSyntaxError, match=error):
        plan_text(reply, registry)


# -- through a server ---------------------------------------------------------------------------


def test_the_server_gets_the_json_schema_and_its_json_plan_runs(
        data_dir: Path, server: Callable[..., str], registry: Registry) -> None:
    def answer(body: dict[str, Any]) -> str:
        fmt = body["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
        schema = fmt["json_schema"]["schema"]
        assert "step_threshold_labeling" in schema["$defs"]
        assert schema["$defs"]["ref_intensity"]["enum"][0] == "cells"
        jsonschema.validate(COUNT_AND_AREA, schema)
        return json.dumps(COUNT_AND_AREA)

    agent = make_agent(data_dir, server(answer), registry)
    reply = agent.ask("How many cells are in cells.tif, and their mean area?")
    assert reply.stopped is None, reply.text
    assert reply.values[0] == 6  # six discs drawn
    true_area = np.mean([np.pi * r * r for _, r in DISCS]) * PIXEL_UM**2
    assert reply.values[1] == pytest.approx(true_area, rel=0.1)
    assert reply.plan is not None and reply.plan.render() == COUNT_AND_AREA_TEXT
    assert reply.model_calls == 1 and reply.stats["generated_tokens"] == 20
    body = _Server.bodies[0]
    system = next(m["content"] for m in body["messages"] if m["role"] == "system")
    assert "JSON" not in system  # the fixed prefix stays the same for every request
    user = user_content(body)
    assert isinstance(user, str)  # no vision: text only
    assert "Request: How many cells" in user and "Write the plan as one JSON object" in user
    assert agent.model.structured_output is True


def test_a_server_without_structured_output_gets_plain_text_for_the_session(
        data_dir: Path, server: Callable[..., str], registry: Registry,
        caplog: pytest.LogCaptureFixture) -> None:
    refuse = (400, "Unrecognized request argument supplied: response_format")
    url = server(refuse, COUNT_AND_AREA_TEXT, COUNT_AND_AREA_TEXT)
    agent = make_agent(data_dir, url, registry)
    with caplog.at_level(logging.DEBUG, logger="agent.backends"):
        first = agent.ask("count the cells in cells.tif and their mean area")
    assert first.stopped is None and first.values[0] == 6
    assert "refused response_format" in caplog.text
    second = agent.ask("count the cells in cells.tif and their mean area")
    assert second.stopped is None and second.values[0] == 6
    assert ["response_format" in b for b in _Server.bodies] == [True, False, False]
    assert "JSON" in user_content(_Server.bodies[0])
    assert "JSON" not in user_content(_Server.bodies[1])  # the plain-text prompt, as before
    assert agent.model.structured_output is False


def test_malformed_json_is_a_plan_error_given_to_the_one_replan(
        data_dir: Path, server: Callable[..., str], registry: Registry) -> None:
    url = server('{"plan": {"steps": [{"tool": "threshold_labeling", "arguments": {',
                 json.dumps(COUNT_AND_AREA))
    agent = make_agent(data_dir, url, registry)
    reply = agent.ask("count the cells in cells.tif and their mean area")
    assert reply.stopped is None, reply.text
    assert reply.values[0] == 6 and reply.stats["replans"] == 1
    replan = user_content(_Server.bodies[1])
    assert "This plan failed:" in replan and "not valid JSON" in replan


def test_a_json_plan_that_fails_the_check_is_replanned_like_any_plan(
        data_dir: Path, server: Callable[..., str], registry: Registry) -> None:
    wrong = {"plan": {"steps": [{"tool": "measure_objects",
                                 "arguments": {"labels": "cells", "image": None}}],
                      "answer": [{"op": "count", "of": "table1", "where": None}]}}
    agent = make_agent(data_dir, server(json.dumps(wrong), json.dumps(COUNT_AND_AREA)),
                       registry)
    reply = agent.ask("count the cells in cells.tif and their mean area")
    assert reply.values[0] == 6 and reply.stats["replans"] == 1
    assert "needs labels, but cells is an image" in user_content(_Server.bodies[1])


def test_a_server_that_is_down_is_a_backend_error(registry: Registry) -> None:
    chat, _ = make_chat_model("qwen2.5:7b", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(BackendError, match=r"the server at http://127\.0\.0\.1:9/v1 failed"):
        complete(chat, "system", "user", schema=plan_schema(registry))


# -- vision ---------------------------------------------------------------------------------------


def _decoded(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(PILImage.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_vision_sends_the_named_image_as_a_png_thumbnail(
        data_dir: Path, server: Callable[..., str], registry: Registry) -> None:
    agent = make_agent(data_dir, server(json.dumps(COUNT_AND_AREA)), registry,
                       model="some-server-model", vision=True)
    reply = agent.ask("count the cells in cells.tif and their mean area")
    assert reply.values[0] == 6
    content = user_content(_Server.bodies[0])
    assert content[0]["type"] == "text" and "Request: count the cells" in content[0]["text"]
    images = [block for block in content if block["type"] == "image_url"]
    assert len(images) == 1
    picture = _decoded(images[0]["image_url"]["url"])
    assert picture.shape == (128, 128) and picture.dtype == np.uint8
    (cy, cx), _ = DISCS[0]
    assert picture[cy, cx] > 200 and picture[2, 2] < 100  # a disc bright, background dark


def test_a_vision_model_name_sends_images_unless_told_not_to(
        data_dir: Path, server: Callable[..., str], registry: Registry) -> None:
    agent = make_agent(data_dir, server(json.dumps(COUNT_AND_AREA)), registry,
                       model="llava:13b", vision=False)
    assert agent.ask("count the cells in cells.tif and their mean area").values[0] == 6
    assert isinstance(user_content(_Server.bodies[0]), str)
    assert make_chat_model("llava:13b", base_url="http://x/v1")[1].vision


def test_thumbnails_are_8_bit_2d_and_at_most_512_pixels() -> None:
    stack = np.zeros((5, 1200, 600), np.float32)  # ZYX
    stack[3, 100:200, 100:200] = 7.0
    picture = _decoded(image_data_url(stack))
    assert picture.shape == (512, 256) and picture.dtype == np.uint8
    assert picture[60, 60] == 255 and picture[5, 5] == 0  # max projection over Z
    movie = np.zeros((4, 2, 64, 64), np.uint16)
    movie[0, 0, 10:20, 10:20] = 1000
    movie[1, 0] = 5000  # a later frame is not shown
    picture = _decoded(image_data_url(movie, ImageMeta(axes="TCYX")))
    assert picture.shape == (64, 64) and picture[15, 15] == 255 and picture[40, 40] == 0
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[..., 0] = 200
    assert _decoded(image_data_url(rgb)).shape == (30, 40, 3)
    with pytest.raises(Exception, match="cannot show an image of shape"):
        image_data_url(np.zeros((0, 4)))


def test_vision_with_the_embedded_model_is_a_clear_error_at_start(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(BackendError, match="the embedded models have no vision; use --base-url"):
        make_chat_model("0.5b", vision=True)
    with pytest.raises(BackendError, match="no vision"):
        make_chat_model(None, vision=True)
    from agent.cli import main

    assert main(["run", "count the cells in x.tif", "--vision", "--quiet",
                 "--outdir", str(tmp_path)]) == 1
    assert "the embedded models have no vision" in capsys.readouterr().err

"""The MCP server: real MCP clients (in-process, stdio, streamable HTTP) call bia's real tools."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import numpy as np
import pandas as pd
import pytest
from mcp import Client, StdioServerParameters
from stardist.matching import matching

import tools
from agent.cli import main as cli_main
from agent.mcp_server import BiaMCP, build_server
from tools.io import read_image
from tools.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
TRUE_COUNT = 120  # nuclei in examples/nuclei_labels.tif


@pytest.fixture
def server(tmp_path: Path):
    workspace = Workspace([EXAMPLES], output_root=tmp_path / "out")
    return build_server(BiaMCP(workspace))


def run(coro_fn, *args):
    """Run an async test body with a hard time limit."""
    async def bounded():
        with anyio.fail_after(120):
            return await coro_fn(*args)
    return anyio.run(bounded)


def test_lists_every_registered_tool_with_its_schema(server) -> None:
    registry = tools.load_all()

    async def body():
        async with Client(server) as client:
            return (await client.list_tools()).tools

    listed = {t.name: t for t in run(body)}
    assert set(registry.tools) | {"search_docs", "list_artifacts", "ask"} == set(listed)
    for tool_ in registry:
        assert listed[tool_.name].input_schema == tool_.parameters_schema()
        assert listed[tool_.name].description == tool_.description


def test_segment_and_measure_bundled_image_matches_truth(server, tmp_path: Path) -> None:
    async def body():
        async with Client(server) as client:
            seg = await client.call_tool("voronoi_otsu_labeling", {
                "image": "nuclei.tif", "spot_sigma": 3.0, "outline_sigma": 1.0})
            labels_name = seg.structured_content["outputs"][0]
            measured = await client.call_tool("measure_objects", {
                "labels": labels_name, "image": "nuclei.tif"})
            listed = await client.call_tool("list_artifacts", {})
            return seg, measured, listed

    seg, measured, listed = run(body)
    assert not seg.is_error and not measured.is_error
    assert "objects" in seg.content[0].text and "Saved:" in seg.content[0].text
    table_file = Path(next(iter(measured.structured_content["files"].values())))
    table = pd.read_csv(table_file)
    assert abs(len(table) - TRUE_COUNT) <= 0.1 * TRUE_COUNT
    assert f"table with {len(table)} rows" in measured.content[0].text
    labels, meta = read_image(next(iter(seg.structured_content["files"].values())))
    truth, _ = read_image(EXAMPLES / "nuclei_labels.tif")
    assert matching(truth.astype(np.int32), labels.astype(np.int32), thresh=0.5).f1 > 0.75
    assert meta.unit == "µm" and "area_um2" in table.columns
    assert "nuclei_labels_measurements" in listed.content[0].text


def test_malformed_calls_return_error_results_and_the_server_goes_on(server) -> None:
    async def body():
        async with Client(server) as client:
            results = [
                await client.call_tool("measure_objects", {"labelz": "x"}),
                await client.call_tool("voronoi_otsu_labeling", {"image": "nuclei.tif",
                                                                 "spot_sigma": "big"}),
                await client.call_tool("voronoi_otsu_labeling", {"image": "../../etc/passwd"}),
                await client.call_tool("no_such_tool", {}),
                await client.call_tool("search_docs", {"query": ""}),
            ]
            after = await client.call_tool("voronoi_otsu_labeling", {"image": "nuclei.tif"})
            return results, after

    results, after = run(body)
    assert all(r.is_error for r in results)
    texts = [r.content[0].text for r in results]
    assert "unknown parameter 'labelz' (did you mean 'labels'?)" in texts[0]
    assert "spot_sigma" in texts[1]
    assert "outside the workspace" in texts[2]
    assert "Unknown tool 'no_such_tool'" in texts[3]
    assert "query" in texts[4]
    assert not after.is_error


def test_search_docs_finds_the_segmentation_tool(server) -> None:
    async def body():
        async with Client(server) as client:
            return await client.call_tool("search_docs", {"query": "voronoi otsu labeling",
                                                          "k": 3})

    result = run(body)
    assert not result.is_error
    hits = result.structured_content["hits"]
    assert 1 <= len(hits) <= 3
    assert any("voronoi_otsu_labeling" in h["text"] for h in hits)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_streamable_http_on_loopback(tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "serve-mcp", "--transport", "http", "--port",
         str(port), "--root", str(EXAMPLES), "--outdir", str(tmp_path)],
        stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path,
    )
    try:
        banner = process.stderr.readline()  # printed once the tools are loaded
        assert f"http://127.0.0.1:{port}/mcp" in banner

        async def body():
            for _ in range(50):  # uvicorn binds just after the banner
                try:
                    async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                        return (await client.list_tools()).tools
                except Exception:
                    await anyio.sleep(0.2)
            raise AssertionError("the HTTP server did not answer")

        names = {t.name for t in run(body)}
        assert {"voronoi_otsu_labeling", "measure_objects", "search_docs"} <= names
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert process.returncode is not None


def test_stdio_transport(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "agent.cli", "serve-mcp", "--root", str(EXAMPLES), "--outdir",
              str(tmp_path)],
        env=_env(), cwd=str(tmp_path),
    )

    async def body():
        async with Client(params) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("voronoi_otsu_labeling", {"image": "nuclei.tif"})
            return names, result

    names, result = run(body)
    assert "segment_tiled" in names
    assert not result.is_error and "objects" in result.content[0].text


def test_http_refuses_non_loopback_hosts(capsys: pytest.CaptureFixture) -> None:
    code = cli_main(["serve-mcp", "--transport", "http", "--host", "0.0.0.0"])
    assert code == 2
    assert "loopback" in capsys.readouterr().err

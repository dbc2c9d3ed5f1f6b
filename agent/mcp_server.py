"""``bia serve-mcp``: every registered tool over the Model Context Protocol.

Any MCP client (Claude Desktop, an IDE, another agent) can then call bia's tools on the files of
the folders it serves. Each tool's MCP input schema is the registry's
:meth:`~tools.registry.Tool.parameters_schema`; a call goes through
:meth:`~tools.registry.Tool.run` in one :class:`~tools.workspace.Workspace` kept for the life of
the server, so artifact names returned by one call can be passed to the next. Every artifact a
call produces is saved into the session folder and its path is returned with the text summary.
Besides the tools, the server offers ``search_docs`` (bia's documentation index, or a keyword
search over the tool cards when the index is not available), ``list_artifacts``, and ``ask``:
a request in plain words answered by bia's own planner (:class:`agent.planner.Agent`, the
configured model) in the same workspace, which returns the answer, the checked plan and its
values.

Two transports: stdio (the default; the client starts ``bia serve-mcp``) and streamable HTTP on
the loopback interface only (``--transport http``), since the server has no authentication and
reads files.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.errors import BiaError
from tools.registry import Registry, Tool, ToolResult, _to_jsonable
from tools.workspace import Workspace

SERVER_NAME = "bia"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
DEFAULT_PORT = 8765
MAX_DOC_HITS = 10

INSTRUCTIONS = """\
bia runs bio-image analysis tools (denoise, segment, measure ...) on image files in the folders \
this server was started with. Pass file paths (relative to those folders) or the artifact names \
that earlier calls returned. Every result is saved; the reply gives the file paths. Use \
search_docs to look up which tool or parameter fits a task."""

SEARCH_DOCS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "What to look up, in plain words."},
        "k": {"type": "integer", "minimum": 1, "maximum": MAX_DOC_HITS,
              "description": "How many passages to return. Default: 5."},
    },
    "required": ["query"],
    "additionalProperties": False,
}

ASK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "request": {"type": "string",
                    "description": "What to do or ask, in plain words, naming the files, e.g. "
                                   "'how many nuclei are in plate.tif?'."},
    },
    "required": ["request"],
    "additionalProperties": False,
}

LIST_ARTIFACTS_SCHEMA: dict[str, Any] = {
    "type": "object", "properties": {}, "additionalProperties": False,
}


# -- documentation search ----------------------------------------------------------------------

_WORD = re.compile(r"[a-zµ0-9]+")


def _words(text: str) -> set[str]:
    return {w.rstrip("s") for w in _WORD.findall(text.lower().replace("_", " ")) if len(w) > 2}


def search_docs(query: str, registry: Registry, *, k: int = 5) -> tuple[list[dict[str, Any]], str]:
    """Documentation passages for ``query``: the RAG index, or tool cards by keyword.

    Returns
    -------
    tuple
        The hits (``id, title, source, kind, score, text``) and which search answered
        (``"rag_index"`` or ``"tool cards (keyword)"``).
    """
    try:
        from rag_index import search

        hits = search(query, k=k)
        return [
            {key: _to_jsonable(getattr(h, key, None))
             for key in ("id", "title", "source", "kind", "score", "text")}
            for h in hits
        ], "rag_index"
    except Exception:  # not installed or not built: the tool cards are always there
        pass
    wanted = _words(query)
    scored = []
    for tool_ in registry:
        card = tool_.card()
        overlap = len(wanted & _words(card)) + 2 * len(wanted & _words(tool_.name))
        if overlap:
            scored.append((overlap, tool_.name, card))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [
        {"id": f"tool:{name}", "title": name, "source": "tool card", "kind": "tool",
         "score": float(score), "text": card}
        for score, name, card in scored[:k]
    ], "tool cards (keyword)"


# -- the server ----------------------------------------------------------------------------------


class BiaMCP:
    """The state behind the MCP server: registry, workspace and the lock that serialises calls.

    Parameters
    ----------
    workspace : Workspace
        Where files are read and results stored and saved.
    registry : Registry, optional
        The tools offered; every tool module of :mod:`tools` by default.
    save : bool
        Save every produced artifact into the session folder and report its path.
    chat_model : tuple, optional
        ``(model, model_info)`` for the ``ask`` tool; the configured model
        (:func:`agent.backends.make_chat_model`) is loaded on the first ``ask`` by default.
    """

    def __init__(self, workspace: Workspace, registry: Registry | None = None, *,
                 save: bool = True, chat_model: tuple[Any, Any] | None = None) -> None:
        if registry is None:
            import tools

            registry = tools.load_all()
        self.registry = registry
        self.workspace = workspace
        self.save = save
        self._lock = threading.Lock()  # the workspace is not thread-safe
        self._chat_model = chat_model
        self._agent: Any = None

    def mcp_tools(self) -> list[Any]:
        """The MCP tool list: every registered tool, then search_docs and list_artifacts."""
        import mcp.types as types

        listed = [
            types.Tool(name=t.name, description=t.description,
                       input_schema=t.parameters_schema())
            for t in self.registry
        ]
        listed.append(types.Tool(
            name="search_docs",
            description="Search bia's documentation and tool descriptions: which tool, "
                        "which parameter, how a method works.",
            input_schema=SEARCH_DOCS_SCHEMA,
        ))
        listed.append(types.Tool(
            name="ask",
            description="Ask bia in plain words: its planner writes one checked plan of tool "
                        "calls, runs it on the files and answers with the number asked for, "
                        "its unit and the method. Earlier results stay available.",
            input_schema=ASK_SCHEMA,
        ))
        listed.append(types.Tool(
            name="list_artifacts",
            description="List the images, label images and tables made so far in this "
                        "session, with their sizes and saved files.",
            input_schema=LIST_ARTIFACTS_SCHEMA,
        ))
        return listed

    def run_tool(self, tool_: Tool, arguments: dict[str, Any]) -> tuple[ToolResult, dict[str, str]]:
        """Run one tool call and save its outputs; errors propagate."""
        with self._lock:
            result = tool_.run(self.workspace, arguments)
            files = {}
            if self.save:
                for name in result.outputs:
                    files[name] = str(self.workspace.save(name))
        return result, files

    def call(self, name: str, arguments: dict[str, Any] | None) -> tuple[str, dict[str, Any], bool]:
        """Answer one ``tools/call``: text, structured content and whether it is an error.

        Every failure (unknown tool, bad arguments, unreadable file, a tool's bug) comes back
        as an error result the client's model can read, never as an exception.
        """
        arguments = dict(arguments or {})
        try:
            if name == "search_docs":
                return self._search(arguments)
            if name == "list_artifacts":
                return self._list()
            if name == "ask":
                return self._ask(arguments)
            tool_ = self.registry.get(name)
            result, files = self.run_tool(tool_, arguments)
        except BiaError as exc:
            return f"Error: {exc}", {"error": str(exc)}, True
        except Exception as exc:  # a tool's bug must reach the client, not kill the server
            message = f"{name} failed: {type(exc).__name__}: {exc}"
            return f"Error: {message}", {"error": message}, True
        lines = [f"{name} done in {result.seconds:.2f} s.", result.summary]
        if files:
            lines.append("Saved: " + "; ".join(f"{k} -> {v}" for k, v in files.items()))
        structured = {
            "tool": name,
            "arguments": result.arguments,
            "outputs": result.outputs,
            "files": files,
            "value": _to_jsonable(result.value) if _plain(result.value) else None,
        }
        return "\n".join(lines), structured, False

    def _search(self, arguments: dict[str, Any]) -> tuple[str, dict[str, Any], bool]:
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            return "Error: search_docs needs a non-empty 'query' string", {}, True
        extra = set(arguments) - {"query", "k"}
        if extra:
            return f"Error: search_docs takes query and k, not {', '.join(sorted(extra))}", {}, True
        k = arguments.get("k", 5)
        if not isinstance(k, int) or not 1 <= k <= MAX_DOC_HITS:
            return f"Error: k must be an integer from 1 to {MAX_DOC_HITS}, got {k!r}", {}, True
        hits, engine = search_docs(query, self.registry, k=k)
        if not hits:
            return f"No documentation matched {query!r} ({engine}).", {"hits": []}, False
        text = "\n\n".join(
            f"[{i}] {h['title']} ({h['source']})\n{' '.join(str(h['text']).split())[:800]}"
            for i, h in enumerate(hits, start=1)
        )
        return text, {"engine": engine, "hits": hits}, False

    def _ask(self, arguments: dict[str, Any]) -> tuple[str, dict[str, Any], bool]:
        request = arguments.get("request")
        if not isinstance(request, str) or not request.strip():
            return "Error: ask needs a non-empty 'request' string", {}, True
        extra = set(arguments) - {"request"}
        if extra:
            return f"Error: ask takes only request, not {', '.join(sorted(extra))}", {}, True
        with self._lock:
            if self._agent is None:
                from agent.backends import make_chat_model
                from agent.planner import Agent
                from agent.session import Session

                model, info = self._chat_model or make_chat_model(None, progress=False)
                self._agent = Agent(model, session=Session(self.workspace, model_info=info,
                                                           registry=self.registry),
                                    registry=self.registry, model_info=info)
            reply = self._agent.ask(request.strip())
            files = {}
            if self.save:
                for name in reply.outputs:
                    files[name] = str(self.workspace.save(name))
        structured = {
            "plan": reply.plan.render() if reply.plan is not None else None,
            "values": [_to_jsonable(v) if _plain(v) else str(v) for v in reply.values],
            "outputs": reply.outputs, "files": files, "stopped": reply.stopped,
        }
        return reply.text, structured, reply.stopped is not None

    def _list(self) -> tuple[str, dict[str, Any], bool]:
        with self._lock:
            items = [
                {"name": a.name, "kind": a.kind,
                 "description": self.workspace.describe(a.name).splitlines()[0],
                 "path": str(a.path) if a.path else None}
                for a in self.workspace
            ]
        if not items:
            return "No artifacts yet: call a tool on an image file first.", {"artifacts": []}, False
        text = "\n".join(
            f"- {i['name']}: {i['description']}" + (f" [{i['path']}]" if i["path"] else "")
            for i in items
        )
        return text, {"artifacts": items}, False


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, int | float | str | bool | dict | list)


def build_server(state: BiaMCP) -> Any:
    """The low-level MCP :class:`~mcp.server.lowlevel.Server` answering for ``state``."""
    import anyio
    import mcp.types as types
    from mcp.server.lowlevel import Server

    try:
        import importlib.metadata

        version = importlib.metadata.version("bia-agent")
    except importlib.metadata.PackageNotFoundError:
        version = "source"

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=state.mcp_tools())

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        # Tools are CPU-bound numpy code: run them off the event loop.
        text, structured, is_error = await anyio.to_thread.run_sync(
            state.call, params.name, params.arguments
        )
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)],
            structured_content=structured or None,
            is_error=is_error,
        )

    return Server(
        SERVER_NAME,
        version=version,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


# -- command line --------------------------------------------------------------------------------


def add_serve_mcp_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bia serve-mcp``."""
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio",
                        help="stdio (started by the client) or streamable HTTP "
                             "(default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="HTTP only: loopback address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="HTTP only: port (default: %(default)s)")
    parser.add_argument("--root", action="append", default=None, metavar="FOLDER",
                        help="folder whose files the tools may read (repeatable; default: "
                             "current folder)")
    parser.add_argument("--outdir", default="bia_output",
                        help="folder in which the session folder with results is made "
                             "(default: %(default)s)")
    parser.add_argument("--no-save", action="store_true",
                        help="keep results in memory only; do not write files")


def _check_host(host: str) -> str:
    if host not in LOOPBACK:
        raise BiaError(
            f"refusing to listen on {host!r}: the MCP server has no authentication and reads "
            f"files, so it serves only the loopback interface ({', '.join(LOOPBACK)})"
        )
    return host


def serve(state: BiaMCP, *, transport: str = "stdio", host: str = "127.0.0.1",
          port: int = DEFAULT_PORT) -> None:
    """Serve until the client disconnects (stdio) or the process is interrupted (HTTP)."""
    server = build_server(state)
    if transport == "stdio":
        import anyio
        from mcp.server.stdio import stdio_server

        async def run_stdio() -> None:
            async with stdio_server() as (read_stream, write_stream):
                await server.run(read_stream, write_stream, server.create_initialization_options())

        anyio.run(run_stdio)
        return
    import uvicorn

    app = server.streamable_http_app(host=_check_host(host))
    print(f"bia MCP server on http://{host}:{port}/mcp", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def serve_mcp_main(args: argparse.Namespace) -> int:
    """Entry point of ``bia serve-mcp``."""
    try:
        if args.transport == "http":
            _check_host(args.host)
        roots: Sequence[str | Path] | None = args.root
        workspace = Workspace(roots, output_root=args.outdir)
        state = BiaMCP(workspace, save=not args.no_save)
        serve(state, transport=args.transport, host=args.host, port=args.port)
    except BiaError as exc:
        print(f"bia serve-mcp: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0

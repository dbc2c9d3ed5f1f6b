"""The agent loop: request -> retrieve -> tool calls -> results -> answer.

One turn::

    messages = system prompt (rules, workspace, retrieved context) + conversation + request
    repeat up to max_steps times:
        reply = model(messages, tools)
        no tool call  -> that is the answer
        tool calls    -> validate and run each; send back a short summary (shapes, counts, a
                         table head) or the error, so the model can fix its call

A model's mistakes (malformed JSON, unknown tools, wrong types, paths outside the workspace) come
back to it as messages, never as crashes. After ``max_retries`` failed steps in a row, or at the
step limit, the turn stops with a message saying what was done and what went wrong.
"""

from __future__ import annotations

import base64
import difflib
import io as _io
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from agent.backends import ModelInfo
from agent.retrieval import Retriever, default_retriever
from agent.session import Event, Session
from agent.toolset import load_registry
from tools.errors import ArtifactNotFoundError, BiaError, InputError, ToolCallError
from tools.registry import Registry, Tool

SYSTEM_PROMPT = """\
You are bia, an assistant for bio-image analysis. You analyse the user's images by calling the \
tools you are given.
- Call a tool when the user asks to process, denoise, segment, detect, measure, track or \
otherwise analyse an image. Pass file paths and artifact names exactly as written.
- For a request with several steps, call the tools one after another. Each tool result names \
the new artifact; pass that name to the next tool.
- Give only the parameters the user stated. Leave out the others so their defaults apply.
- If the user only asks a question, answer it briefly without calling a tool.
- When every step is done, answer in one or two sentences with the key numbers. Do not call \
a tool again for a step that is already done, and never claim a result no tool produced.
- Use only the tool names listed; write each call in <tool_call></tool_call> tags."""

CITE_PROMPT = """\
Documentation that may help (cite it as [1], [2] when you use it):
{context}"""

NEXT_STEP_HINT = ("If every part of it is done, answer with a one-sentence summary; otherwise "
                  "call the tool for the next part.")

MAX_RESULT_CHARS = 1500
_QUESTION = re.compile(
    r"^\s*(how|what|which|why|when|where|who|can|could|should|is|are|does|do|explain|"
    r"tell me|describe)\b", re.IGNORECASE,
)
_STEP_SPLIT = re.compile(r"\bthen\b|\band\b|[,;.]\s", re.IGNORECASE)
_SCHEMA_WORDS = frozenset(
    {"additionalProperties", "properties", "required", "type", "description", "default", "title"}
)
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_IMAGE_FILE = re.compile(r"[\w./\\~-]+\.(?:tif|tiff|png|jpg|jpeg)\b", re.IGNORECASE)


@dataclass
class Reply:
    """The outcome of one turn.

    Attributes
    ----------
    text : str
        The answer for the user (with a note when the turn stopped early).
    events : list of Event
        Calls run or refused in this turn, in order.
    outputs : list of str
        Artifacts stored in this turn.
    sources : list
        Retrieved passages the answer cites (numbered as in the text).
    stopped : str or None
        ``"step_limit"`` or ``"errors"`` when the turn ended early.
    model_calls : int
        How many times the model was asked.
    seconds : float
        Wall time of the turn.
    """

    text: str
    events: list[Event] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    sources: list[Any] = field(default_factory=list)
    stopped: str | None = None
    model_calls: int = 0
    seconds: float = 0.0

    @property
    def tool_calls(self) -> list[Event]:
        """The calls that ran."""
        return [e for e in self.events if e.kind == "call"]


Callback = Callable[[str, dict[str, Any]], None]


def is_question(text: str) -> bool:
    """Whether ``text`` reads as a question rather than an instruction."""
    return bool(_QUESTION.match(text)) or text.strip().endswith("?")


def _mentioned(value: Any, name: str, text: str) -> bool:
    """Whether the user's text states ``value`` for parameter ``name``."""
    lowered = text.lower()
    if isinstance(value, bool):
        return any(w in lowered for w in name.lower().split("_") if len(w) > 3)
    if isinstance(value, int | float):
        return any(float(n) == float(value) for n in _NUMBER.findall(text))
    if isinstance(value, str):
        return value.lower() in lowered
    if isinstance(value, list | tuple):
        return bool(value) and all(_mentioned(v, name, text) for v in value)
    return False


def request_steps(request: str) -> list[str]:
    """The steps of a request: "denoise a.tif, then segment (sigma 3, 1) and measure" -> 3."""
    plain = re.sub(r"\([^)]*\)", "", request)
    return [p.strip(" .,;") for p in _STEP_SPLIT.split(plain) if len(p.split()) >= 2]


def _names_parameter(name: str, text: str) -> bool:
    """Whether the user's words name parameter ``name`` ("spot sigma" names ``spot_sigma``)."""
    parts = [w for w in name.lower().split("_") if len(w) > 1]
    return bool(parts) and all(re.search(rf"\b{re.escape(w)}", text, re.IGNORECASE)
                               for w in parts)


def _is_artifact(tool_: Tool, name: str) -> bool:
    return any(p.name == name and p.kind == "artifact" for p in tool_.params)


def drop_unrequested(tool_: Tool, arguments: dict[str, Any],
                     user_text: str) -> tuple[dict[str, Any], list[str]]:
    """Remove optional value arguments whose value the user never stated.

    Small local models invent sizes and thresholds; the tool's default is a better guess than an
    invented number. Artifact arguments and required arguments are kept.

    Returns
    -------
    tuple
        The arguments kept and the names of those dropped.
    """
    kept, dropped = {}, []
    optional = {p.name for p in tool_.params if p.kind == "value" and not p.required}
    for name, value in arguments.items():
        if name in optional and not _mentioned(value, name, user_text):
            dropped.append(name)
        else:
            kept[name] = value
    return kept, dropped


def image_content(text: str, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
    """A user message with images as PNG data URLs, for vision-capable models."""
    from PIL import Image as PILImage

    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}]
    for array in images:
        data = np.asarray(array, dtype=np.float64)
        while data.ndim > 2:
            data = data.max(axis=0)  # maximum projection of extra axes
        low, high = np.percentile(data, [0.5, 99.5])
        scaled = np.clip((data - low) / max(high - low, 1e-12), 0, 1)
        picture = PILImage.fromarray((scaled * 255).astype(np.uint8))
        picture.thumbnail((768, 768))
        buffer = _io.BytesIO()
        picture.save(buffer, format="PNG")
        url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
        blocks.append({"type": "image_url", "image_url": {"url": url}})
    return blocks


class Agent:
    """A function-calling loop over the registry's tools, keeping a :class:`Session`.

    Parameters
    ----------
    model : BaseChatModel
        Any LangChain chat model that supports ``bind_tools``.
    session : Session, optional
        Conversation and workspace; a new one by default.
    registry : Registry, optional
        The tools offered; the global registry with every tool module loaded by default.
    retriever : Retriever, optional
        Documentation search and tool shortlist; :mod:`rag_index` or keyword search by default.
    model_info : ModelInfo, optional
        What the model is (recorded in provenance; decides vision and argument dropping).
    max_steps : int
        Most model calls per turn.
    max_retries : int
        Failed steps in a row allowed before the turn stops.
    max_tools : int, optional
        Registries larger than this show the model a shortlist of this many tools (default
        from ``model_info``: 6 for the embedded model, 10 otherwise).
    callback : callable, optional
        Called as ``callback(event, data)`` with ``"model_start"``, ``"model_end"``,
        ``"tool_start"`` and ``"tool_end"``, for progress display.
    """

    def __init__(
        self,
        model: BaseChatModel,
        *,
        session: Session | None = None,
        registry: Registry | None = None,
        retriever: Retriever | None = None,
        model_info: ModelInfo | None = None,
        max_steps: int = 8,
        max_retries: int = 1,
        max_tools: int | None = None,
        drop_unrequested: bool | None = None,
        callback: Callback | None = None,
    ) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        self.model = model
        self.registry = registry if registry is not None else load_registry()
        self.model_info = model_info or ModelInfo("unknown", type(model).__name__)
        self.session = (session if session is not None
                        else Session(model_info=self.model_info, registry=self.registry))
        if self.session.model_info is None:
            self.session.model_info = self.model_info
        self.session.registry = self.registry
        self.retriever = retriever or default_retriever(self.registry)
        self.max_steps = max_steps
        self.max_retries = max_retries
        self.max_tools = max_tools if max_tools is not None else self.model_info.max_tools
        self.drop_unrequested = (
            self.model_info.drop_unrequested if drop_unrequested is None else drop_unrequested
        )
        self.callback = callback
        self._suggested = ""  # the call that would fix the last failure, for small models

    # -- prompt ---------------------------------------------------------------------------

    def _notify(self, kind: str, **data: Any) -> None:
        if self.callback is not None:
            self.callback(kind, data)

    def choose_tools(self, request: str) -> list[Tool]:
        """All tools, or a shortlist for ``request`` when there are more than ``max_tools``.

        Each part of a multi-step request ("denoise ..., then segment ..., then measure ...")
        is searched on its own, so every step gets its best tools into the shortlist.
        """
        tools = list(self.registry)
        if len(tools) <= self.max_tools:
            return tools
        parts = request_steps(request)
        per_part = max(1, self.max_tools // max(1, len(parts)))
        names: list[str] = []
        if len(parts) > 1:
            for part in parts:
                names += self.retriever.shortlist_tools(part, k=per_part)
        names += self.retriever.shortlist_tools(request, k=self.max_tools)
        used = [c.tool for c in self.session.calls[-3:]]
        chosen = list(dict.fromkeys([*names[: self.max_tools], *used]))
        return [self.registry.get(n) for n in chosen if n in self.registry]

    def retrieve(self, request: str) -> list[Any]:
        """Documentation for the prompt: for questions only, where the model needs it."""
        if not is_question(request):
            return []
        return list(self.retriever.search(request, k=4))

    def tool_schema(self, tool_: Tool) -> dict[str, Any]:
        """The tool as the model sees it.

        For small local models (``drop_unrequested``) the schema is trimmed: the summary line
        only, and optional value parameters only when the user's words name them. A shorter
        prompt is much faster on a CPU, and a parameter the model does not see is one it cannot
        invent a value for.
        """
        schema = tool_.openai_schema()
        if not self.drop_unrequested:
            return schema
        text = self._user_text()
        function = schema["function"]
        function["description"] = f"({tool_.category}) {tool_.summary}"
        params = function["parameters"]
        required = set(params.get("required", []))
        params["properties"] = {
            name: prop for name, prop in params["properties"].items()
            if name in required or _is_artifact(tool_, name) or _names_parameter(name, text)
        }
        return schema

    def context_prompt(self, hits: Sequence[Any]) -> str:
        """The workspace's artifacts and numbered retrieved passages ("" when there are none).

        Sent as a separate system message after the conversation so that the fixed system
        prompt and tool list stay a stable prefix the embedded model's cache can reuse.
        """
        parts = []
        if len(self.session.workspace):
            listed = [
                f"- {a.name} ({self.session.workspace.describe(a.name).splitlines()[0]})"
                for a in list(self.session.workspace)[-12:]
            ]
            parts.append("Artifacts in the workspace:\n" + "\n".join(listed))
        if hits:
            context = "\n".join(
                f"[{i}] {h.title}: {' '.join(h.text.split())[:600]}"
                for i, h in enumerate(hits, start=1)
            )
            parts.append(CITE_PROMPT.format(context=context))
        return "\n\n".join(parts)

    def system_prompt(self, hits: Sequence[Any]) -> str:
        """The fixed rules followed by :meth:`context_prompt` (for a single-message prompt)."""
        return "\n\n".join(p for p in (SYSTEM_PROMPT, self.context_prompt(hits)) if p)

    def _user_text(self) -> str:
        return "\n".join(self.session.requests)

    def _human_message(self, request: str) -> HumanMessage:
        if not self.model_info.vision:
            return HumanMessage(content=request)
        arrays = []
        for match in _IMAGE_FILE.findall(request):
            try:
                artifact = self.session.workspace.get(match)
            except BiaError:
                continue  # the tool call will report the problem
            if artifact.kind == "image":
                arrays.append(artifact.data)
        return HumanMessage(content=image_content(request, arrays) if arrays else request)

    # -- calls ----------------------------------------------------------------------------

    def execute(self, name: str, arguments: Any) -> Event:
        """Run one tool call from the model; every problem becomes an error event."""
        if not isinstance(arguments, dict):
            return Event("error", name, {}, f"Error: arguments of {name!r} must be a JSON object",
                         retryable=True)
        offered = getattr(self, "_offered", None)
        if offered and name not in self.registry:
            hint = difflib.get_close_matches(str(name), offered, n=1)
            return Event("error", name, arguments,
                         f"Error: unknown tool {name!r}."
                         + (f" Did you mean {hint[0]!r}?" if hint else "")
                         + f" Use one of: {', '.join(offered)}.", retryable=True)
        try:
            tool_ = self.registry.get(name)
        except ToolCallError as exc:
            return Event("error", name, arguments, f"Error: {exc}", retryable=True)
        names = {p.name for p in tool_.params}
        for key in ("properties", "parameters", "arguments"):
            inner = arguments.get(key)
            if key not in names and isinstance(inner, dict) and set(inner) & names:
                # {"properties": {"image": ...}}: the arguments wrapped in a schema word.
                arguments = {**{k: v for k, v in arguments.items() if k != key}, **inner}
        # Small models copy JSON-schema words from the tool list into their arguments.
        dropped = [k for k in arguments if k in _SCHEMA_WORDS and k not in names]
        arguments = {k: v for k, v in arguments.items() if k not in dropped}
        if self.drop_unrequested:
            arguments, more = drop_unrequested(tool_, arguments, self._user_text())
            dropped += more
        self._notify("tool_start", tool=name, arguments=arguments)
        start = time.perf_counter()
        try:
            result = tool_.run(self.session.workspace, arguments)
        except ArtifactNotFoundError as exc:
            named = bool(exc.ref) and str(exc.ref) in self._user_text()
            event = Event("error", name, arguments,
                          _with_hint(exc, self._input_hint(tool_, arguments)),
                          dropped=dropped, seconds=time.perf_counter() - start,
                          retryable=not named)
        except BiaError as exc:
            hint = self._input_hint(tool_, arguments) if isinstance(exc, InputError) else ""
            event = Event("error", name, arguments, _with_hint(exc, hint), dropped=dropped,
                          seconds=time.perf_counter() - start,
                          retryable=isinstance(exc, ToolCallError | InputError))
        except Exception as exc:  # a tool bug must reach the model and the log, not crash
            event = Event("error", name, arguments,
                          f"Error: {name} failed: {type(exc).__name__}: {exc}", dropped=dropped,
                          seconds=time.perf_counter() - start)
        else:
            summary = self._result_text(result)
            event = Event("call", name, result.arguments,
                          f"{name} done in {result.seconds:.1f} s. {summary}\n"
                          f"The request was: {self.session.requests[-1]!r}. {NEXT_STEP_HINT}",
                          outputs=list(result.outputs), seconds=result.seconds, dropped=dropped)
        self._notify("tool_end", event=event)
        return event

    def _input_hint(self, tool_: Tool, arguments: dict[str, Any]) -> str:
        """For labels or a table not made yet: which tool makes them, for the error message.

        Small models call ``measure_objects(labels="cells_labels.tif")`` or pass the image as
        labels before segmenting; the bare error made them give up. The call to make first is
        kept in ``_suggested`` for the reminder that follows a give-up.
        """
        workspace = self.session.workspace
        for p in tool_.params:
            value = arguments.get(p.name)
            if (p.kind != "artifact" or p.artifact_kind not in ("labels", "table")
                    or not isinstance(value, str)):
                continue
            try:
                given = workspace.get(value)
            except BiaError:
                given = None
            if given is not None and given.kind == p.artifact_kind:
                continue
            candidates = [*getattr(self, "_offered", []), *(t.name for t in self.registry)]
            makers = [name for name in dict.fromkeys(candidates) if _makes(
                self.registry.get(name), p.artifact_kind)]
            if not makers:
                continue
            if p.artifact_kind == "labels":
                images = _IMAGE_FILE.findall(self._user_text())
                image = value if given is not None and given.kind == "image" else (
                    images[0] if images else None)
                # JSON, not repr: models copy the quotes into their call.
                self._suggested = (f"{makers[0]} with {json.dumps({'image': image})}" if image
                                   else makers[0])
                what, source = "labels", " on the image"
            else:
                self._suggested = makers[0]
                what, source = "a table", ""
            missing = "" if given is not None else f"; nothing has made {value!r}"
            return (f" {p.name!r} takes {what} that a tool made earlier{missing}. Make it "
                    f"first: call {' or '.join(makers[:2])}{source}, then pass the name it "
                    "reports.")
        return ""

    def _result_text(self, result: Any) -> str:
        """What the model reads about a result: the new names first, then shapes or a head."""
        if not result.outputs:
            text = result.summary
        else:
            parts = []
            for name in result.outputs:
                described = self.session.workspace.describe(name)
                first, _, rest = described.partition("\n")
                parts.append(f'Stored "{name}" ({first}).' + (f"\n{rest}" if rest else ""))
            names = ", ".join(f'"{n}"' for n in result.outputs)
            parts.append(f"To use it in the next tool, pass {names}.")
            if result.value is not None:
                parts.append(result.summary.rsplit("; ", 1)[-1])
            text = "\n".join(parts)
        return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + " ..."

    # -- the turn -------------------------------------------------------------------------

    def ask(self, request: str) -> Reply:
        """Answer one request, calling tools as the model decides.

        Parameters
        ----------
        request : str
            What the user typed.

        Returns
        -------
        Reply
            The answer, the calls made, the artifacts stored and the cited sources.
        """
        start = time.perf_counter()
        session = self.session
        hits = self.retrieve(request)
        context = self.context_prompt(hits)
        session.requests.append(request)
        earlier = list(session.messages)
        session.messages.append(self._human_message(request))
        tools = self.choose_tools(request)
        self._offered = [t.name for t in tools]
        bound = self.model.bind_tools([self.tool_schema(t) for t in tools]) if tools \
            else self.model
        prefix = [SystemMessage(content=SYSTEM_PROMPT), *earlier]
        if context:
            prefix.append(SystemMessage(content=context))
        events: list[Event] = []
        failures = 0
        nudged = 0
        retried = False
        self._suggested = ""
        for step in range(1, self.max_steps + 1):
            self._notify("model_start", step=step)
            ai = bound.invoke([*prefix, *session.messages[len(earlier):]])
            self._notify("model_end", step=step, message=ai)
            if not isinstance(ai, AIMessage):
                ai = AIMessage(content=str(getattr(ai, "content", ai)))
            session.messages.append(ai)
            if not ai.tool_calls and not ai.invalid_tool_calls:
                remaining = self._unfinished_part(request, events, nudged)
                if remaining is not None and step < self.max_steps:
                    # Small models stop after the first step of "do A, then B": remind once
                    # per missing step instead of accepting an answer that claims B.
                    nudged += 1
                    last = [e for e in events if e.kind == "call"][-1]
                    session.messages.append(HumanMessage(
                        content=f"Not finished yet: the request also asks to {remaining!r}. "
                                f"Call the tool for that, using "
                                f"{', '.join(repr(o) for o in last.outputs) or 'the result'}."))
                    continue
                if not retried and step < self.max_steps and self._gave_up(events):
                    # Small models answer "I can't" after one failed call; one more try with
                    # the error in front of them usually fixes the call.
                    retried = True
                    # The give-up is dropped: with it in the context the 1.5B model repeats
                    # it word for word instead of following the reminder.
                    session.messages.pop()
                    session.messages.append(HumanMessage(
                        content="Not done yet: the call failed and nothing has been done. "
                                + (f"Call {self._suggested} now." if self._suggested else
                                   "Read the error, then call a tool that does the request.")))
                    continue
                text = _content_text(ai)
                if not text or NEXT_STEP_HINT[:30] in text:
                    # Small models sometimes answer by repeating the instruction of the last
                    # tool result; the person gets what was done instead of our own prompt.
                    text = _done_text(events)
                return self._finish(request, text, events, hits, None, step, start)
            if ai.tool_calls and not ai.invalid_tool_calls and all(
                self._repeats(call, events) for call in ai.tool_calls
            ):
                # Small models often answer a finished job by asking for it again: that is
                # the end of the turn, not a reason to redo the work.
                session.messages[-1] = AIMessage(content=_done_text(events))
                return self._finish(request, _done_text(events), events, hits, None, step,
                                    start)
            step_failed = False
            for bad in ai.invalid_tool_calls:
                event = Event("error", bad.get("name"), {},
                              f"Error: {bad.get('error') or 'unreadable tool call'}. Write each "
                              'call as a JSON object {"name": ..., "arguments": {...}}.',
                              retryable=True)
                step_failed = True
                events.append(event)
                session.events.append(event)
                session.messages.append(ToolMessage(content=event.message,
                                                    tool_call_id=bad["id"], status="error"))
            for call in ai.tool_calls:
                if self.drop_unrequested and any(
                    e.kind == "call" and e.tool == call["name"] for e in events
                ):
                    session.messages.append(ToolMessage(
                        content=f"Not run: {call['name']} already ran for this request; its "
                                "result is above.", tool_call_id=call.get("id") or call["name"]))
                    continue
                if step_failed:
                    event = Event("error", call["name"], call.get("args") or {},
                                  "Not run: an earlier call in this step failed. Fix that "
                                  "one first.")
                else:
                    event = self.execute(call["name"], call.get("args"))
                    step_failed = event.kind == "error"
                events.append(event)
                session.events.append(event)
                session.messages.append(ToolMessage(
                    content=event.message, tool_call_id=call.get("id") or call["name"],
                    status="error" if event.kind == "error" else "success"))
            failures = failures + 1 if step_failed else 0
            if failures > self.max_retries:
                last = next(e for e in reversed(events) if e.kind == "error")
                text = (f"I stopped because the tool call kept failing: "
                        f"{last.message.removeprefix('Error: ')}")
                return self._finish(request, _prefix_done(events, text), events, hits, "errors",
                                    step, start)
        text = (f"I stopped after {self.max_steps} steps, the most allowed for one request, "
                "before finishing.")
        return self._finish(request, _prefix_done(events, text), events, hits, "step_limit",
                            self.max_steps, start)

    def _unfinished_part(self, request: str, events: Sequence[Event], nudged: int) -> str | None:
        """For small models: the step of a multi-step request that no call has done yet."""
        if not self.drop_unrequested:
            return None
        done = [e for e in events if e.kind == "call"]
        parts = request_steps(request)
        if not done or len(parts) <= len(done) or nudged >= len(parts) - 1:
            return None
        return parts[len(done)]

    def _gave_up(self, events: Sequence[Event]) -> bool:
        """For small models: whether an answer follows only calls that failed by its own fault.

        A missing or refused file the user named, or a tool that crashed, is a right reason
        to stop; a wrong argument or a result not made yet is not.
        """
        return (self.drop_unrequested and not any(e.kind == "call" for e in events)
                and any(e.retryable for e in events))

    def _repeats(self, call: dict[str, Any], events: Sequence[Event]) -> bool:
        """Whether ``call`` asks again for a call that already ran in this turn.

        For small local models (``drop_unrequested``) any second call of the same tool counts:
        they chain a tool onto its own output instead of stopping.
        """
        args = call.get("args") or {}
        if self.drop_unrequested and any(
            e.kind == "call" and e.tool == call["name"] for e in events
        ):
            return True
        for event in events:
            if event.kind != "call" or event.tool != call["name"]:
                continue
            same = all(event.arguments.get(k) == v or _same_input(self, event, k, v)
                       for k, v in args.items() if k not in _SCHEMA_WORDS)
            if same:
                return True
        return False

    def _finish(self, request: str, text: str, events: list[Event], hits: list[Any],
                stopped: str | None, model_calls: int, start: float) -> Reply:
        session = self.session
        if stopped is not None:
            session.messages.append(AIMessage(content=text))
            session.events.append(Event("stop", None, {}, text))
        sources: list[Any] = []
        if hits and not any(e.kind == "call" for e in events):
            cited = sorted({int(n) for n in re.findall(r"\[(\d+)\]", text)})
            sources = [hits[n - 1] for n in cited if 1 <= n <= len(hits)] or list(hits)
        elif is_question(request) and not events:
            text = ("Nothing relevant was found in bia's documentation; this answer is the "
                    "model's own.\n\n" + text)
        return Reply(
            text=text.strip(),
            events=events,
            outputs=[name for e in events for name in e.outputs],
            sources=sources,
            stopped=stopped,
            model_calls=model_calls,
            seconds=time.perf_counter() - start,
        )


def _same_input(agent: Agent, event: Event, key: str, value: Any) -> bool:
    """Whether ``value`` (e.g. a file path) names the artifact the event used for ``key``."""
    used = event.arguments.get(key)
    artifact = agent.session.workspace.artifacts.get(str(used))
    return artifact is not None and isinstance(value, str) and bool(value) and str(
        artifact.provenance.get("file", "")).endswith(value)


def _content_text(message: AIMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content.strip()
    return "\n".join(
        b.get("text", "") if isinstance(b, dict) else str(b) for b in content
    ).strip()


def _done_text(events: Sequence[Event]) -> str:
    done = [e for e in events if e.kind == "call"]
    if not done:
        return "(no answer)"
    last = done[-1].message.split(". ", 1)[-1].splitlines()[0]
    return "Done: " + "; ".join(
        f"{e.tool} -> {', '.join(e.outputs) or 'value'}" for e in done
    ) + f". {last}"


def _prefix_done(events: Sequence[Event], text: str) -> str:
    done = [e for e in events if e.kind == "call"]
    return f"{_done_text(events)} {text}" if done else text


def _makes(tool_: Tool, kind: str) -> bool:
    """Whether ``tool_`` makes a ``kind`` artifact without needing one (segmenters for labels)."""
    return any(o.artifact_kind == kind for o in tool_.outputs) and not any(
        q.kind == "artifact" and q.artifact_kind == kind for q in tool_.params)


def _with_hint(exc: Exception, hint: str) -> str:
    text = f"Error: {exc}"
    return f"{text}{'' if text.endswith('.') or not hint else '.'}{hint}"

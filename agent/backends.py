"""Chat models behind one interface: embedded GGUF, any OpenAI-compatible server, scripted.

All three are LangChain chat models, so the loop calls ``model.bind_tools(schemas).invoke(...)``
and reads ``AIMessage.tool_calls`` whatever answers:

* :class:`LlamaCppChatModel` runs a Qwen2.5-Coder Instruct GGUF in-process with llama-cpp-python.
  The prompt is rendered with the model's own chat template (tools included), and tool calls are
  read back from ``<tool_call>`` blocks or fenced JSON by :mod:`agent.parsing`. Generation is not
  grammar-forced: forced JSON never answers a plain question without a tool.
* :func:`openai_chat_model` reaches OpenAI, Ollama, vLLM, a llama.cpp server or LM Studio by base
  URL and key (:class:`langchain_openai.ChatOpenAI`).
* :class:`ScriptedChatModel` replays replies written in a test, through the same parser.

:func:`make_chat_model` picks one from a model name, a base URL and the configuration
(:func:`load_config`).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import threading
import time
import tomllib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

from agent import weights
from agent.parsing import parse_reply
from tools.errors import BiaError


class BackendError(BiaError, RuntimeError):
    """A chat model cannot be set up: missing package, model file or server settings."""


@dataclass
class ModelInfo:
    """What answered: recorded in provenance and shown to the user.

    Attributes
    ----------
    backend : {"embedded", "openai", "scripted"}
        Which kind of chat model.
    name : str
        Model name (the GGUF's model, or the server's model id).
    file : str or None
        The GGUF file of an embedded model.
    sha256 : str or None
        Hash of that file.
    base_url : str or None
        Server of an OpenAI-compatible backend.
    vision : bool
        Whether images may be sent to the model.
    drop_unrequested : bool
        Whether optional arguments the user did not give are removed from the model's calls
        (small local models invent them).
    load_seconds : float
        Time to load the model (0 for remote ones).
    max_tools : int
        Most tools shown at once; larger registries are shortlisted per request.
    """

    backend: str
    name: str
    file: str | None = None
    sha256: str | None = None
    base_url: str | None = None
    vision: bool = False
    drop_unrequested: bool = False
    load_seconds: float = 0.0
    max_tools: int = 10
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``provenance.json``."""
        return {
            "backend": self.backend, "name": self.name, "file": self.file, "sha256": self.sha256,
            "base_url": self.base_url, "vision": self.vision,
            "drop_unrequested_optional_arguments": self.drop_unrequested, **self.extra,
        }


def _tool_schemas(tools: Sequence[Any]) -> list[dict[str, Any]]:
    schemas = []
    for item in tools:
        if isinstance(item, dict) and item.get("type") == "function":
            schemas.append(item)
        elif hasattr(item, "openai_schema"):
            schemas.append(item.openai_schema())  # a registry Tool
        else:
            schemas.append(convert_to_openai_tool(item))
    return schemas


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(block.get("text", ""))
    return "\n".join(parts)


def to_template_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages as the plain dicts a Hugging Face chat template expects."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            out.append({"role": "system", "content": _text_of(message.content)})
        elif isinstance(message, HumanMessage):
            out.append({"role": "user", "content": _text_of(message.content)})
        elif isinstance(message, AIMessage):
            text = _text_of(message.content)
            for bad in message.invalid_tool_calls:
                # Show the model its own unreadable call, so the error that follows makes sense.
                text += f"\n<tool_call>\n{bad.get('args') or ''}\n</tool_call>"
            entry: dict[str, Any] = {"role": "assistant", "content": text.strip()}
            if message.tool_calls:
                entry["tool_calls"] = [
                    {"type": "function", "id": call.get("id"),
                     "function": {"name": call["name"], "arguments": call["args"]}}
                    for call in message.tool_calls
                ]
            out.append(entry)
        elif isinstance(message, ToolMessage):
            out.append({"role": "tool", "content": _text_of(message.content),
                        "tool_call_id": message.tool_call_id})
        else:
            out.append({"role": "user", "content": _text_of(message.content)})
    return out


def message_from_text(text: str) -> AIMessage:
    """An :class:`AIMessage` with the tool calls read from a model's raw text."""
    parsed = parse_reply(text)
    tool_calls = [
        {"name": c.name, "args": c.arguments, "id": f"call_{uuid.uuid4().hex[:12]}",
         "type": "tool_call"}
        for c in parsed.calls
    ]
    invalid = [
        {"name": None, "args": bad.raw, "id": f"call_{uuid.uuid4().hex[:12]}",
         "error": bad.error, "type": "invalid_tool_call"}
        for bad in parsed.invalid
    ]
    return AIMessage(content=parsed.text, tool_calls=tool_calls, invalid_tool_calls=invalid,
                     response_metadata={"raw_text": text})


# -- embedded ---------------------------------------------------------------------------------


def default_threads() -> int:
    """Threads for llama.cpp: ``$BIA_THREADS``, else the idle cores (1 to 4).

    llama.cpp's threads wait for each other at every layer, so on a busy machine two threads
    were 2-5x slower than one (measured on 2 cores under load 8); only idle cores are used.
    """
    env = os.environ.get("BIA_THREADS")
    if env:
        return max(1, int(env))
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:  # not available on this platform
        busy = 0.0
    return max(1, min(4, cores, int(cores - busy + 0.5)))


_LOAD_LOCK = threading.Lock()


@functools.lru_cache(maxsize=2)
def _load_llama(path: str, n_ctx: int, n_threads: int) -> Any:
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise BackendError(
            "the embedded model needs llama-cpp-python, which is not installed. Install it once "
            "(it compiles llama.cpp, ~11 min on 2 cores): pip install -e '.[llm]' -- or use a "
            "server with --base-url"
        ) from exc
    llama = Llama(model_path=path, n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads,
                  verbose=False, seed=0)
    # Freed by __del__ during interpreter teardown, llama-cpp prints a traceback; free it first.
    atexit.register(llama.close)
    return llama


def _render_template(template: str, messages: list[dict[str, Any]],
                     tools: list[dict[str, Any]] | None, bos_token: str, eos_token: str) -> str:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def tojson(value: Any, indent: int | None = None, separators: Any = None,
               sort_keys: bool = False, ensure_ascii: bool = False) -> str:
        # Hugging Face renders templates with json.dumps, not jinja's HTML-escaping tojson.
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)

    def raise_exception(message: str) -> None:
        raise BackendError(f"chat template error: {message}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(
        messages=messages, tools=tools or None, add_generation_prompt=True,
        bos_token=bos_token, eos_token=eos_token,
    )


class LlamaCppChatModel(BaseChatModel):
    """A GGUF chat model run in-process by llama-cpp-python with its own chat template.

    Parameters
    ----------
    model_path : str
        The GGUF file.
    n_ctx : int
        Context length in tokens.
    n_threads : int
        CPU threads.
    max_tokens : int
        Most tokens generated per reply.
    temperature : float
        0 means greedy decoding, so answers are reproducible.
    """

    model_path: str
    n_ctx: int = 8192
    n_threads: int = Field(default_factory=default_threads)
    max_tokens: int = 512
    temperature: float = 0.0
    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def _llm_type(self) -> str:
        return "bia-llama-cpp"

    @property
    def llama(self) -> Any:
        """The loaded ``llama_cpp.Llama`` (loaded once per file and settings)."""
        with _LOAD_LOCK:
            return _load_llama(self.model_path, self.n_ctx, self.n_threads)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        """Bind tools (registry Tools, OpenAI dicts, functions) for the chat template."""
        return self.bind(tools=_tool_schemas(tools), **kwargs)

    def render_prompt(self, messages: Sequence[BaseMessage],
                      tools: list[dict[str, Any]] | None = None) -> str:
        """The exact prompt text the model sees."""
        metadata = self.llama.metadata
        template = metadata.get("tokenizer.chat_template")
        if not template:
            raise BackendError(f"{self.model_path} has no chat template; use an Instruct model")
        vocab = self.llama
        bos = vocab.detokenize([vocab.token_bos()]).decode("utf-8", "ignore") \
            if vocab.token_bos() >= 0 else ""
        eos = vocab.detokenize([vocab.token_eos()]).decode("utf-8", "ignore")
        return _render_template(template, to_template_messages(messages), tools, bos, eos)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        tools = kwargs.get("tools")
        prompt = self.render_prompt(messages, tools)
        start = time.perf_counter()
        out = self.llama.create_completion(
            prompt, max_tokens=self.max_tokens, temperature=self.temperature,
            stop=["<|im_end|>", "<|endoftext|>", *(stop or [])], seed=0,
        )
        text = out["choices"][0]["text"]
        message = message_from_text(text)
        usage = out.get("usage", {})
        message.response_metadata.update(
            {"seconds": time.perf_counter() - start, "usage": usage,
             "finish_reason": out["choices"][0].get("finish_reason")}
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def embedded_chat_model(size: str = weights.DEFAULT_SIZE, *, model_path: str | None = None,
                        n_threads: int | None = None, n_ctx: int = 8192,
                        progress: bool = True) -> tuple[LlamaCppChatModel, ModelInfo]:
    """Load the embedded model (verified GGUF from the cache, or ``model_path``).

    Raises
    ------
    BackendError
        When llama-cpp-python is missing or the weights are not fetched (with the command).
    """
    if model_path:
        path = Path(model_path)
        if not path.is_file():
            raise BackendError(f"model file {model_path!r} does not exist")
        name, sha = path.name, weights.file_sha256(path)
    else:
        try:
            path = weights.ensure_model(size, fetch=False, progress=progress)
        except weights.WeightsError as exc:
            raise BackendError(str(exc)) from None
        spec = weights.model_spec(size)
        name, sha = spec.name, spec.sha256
    model = LlamaCppChatModel(model_path=str(path), n_ctx=n_ctx,
                              n_threads=n_threads or default_threads())
    # A short tool list keeps the prompt short (fast on a CPU) and the choice easy.
    start = time.perf_counter()
    with Spinner(f"Loading {name} ...", progress):
        model.llama  # noqa: B018 - load now so the time is reported as loading
    info = ModelInfo("embedded", name, file=str(path), sha256=sha, drop_unrequested=True,
                     load_seconds=time.perf_counter() - start, max_tools=6,
                     extra={"n_threads": model.n_threads, "n_ctx": n_ctx})
    return model, info


class Spinner:
    """A rich spinner on stderr while something slow happens (silent when disabled)."""

    def __init__(self, text: str, enabled: bool = True) -> None:
        self.text, self.enabled, self._ctx = text, enabled, None

    def __enter__(self) -> Spinner:
        if self.enabled:
            from rich.console import Console

            self._ctx = Console(stderr=True).status(self.text)
            self._ctx.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(*exc)


# -- scripted ---------------------------------------------------------------------------------

Reply = str | AIMessage | Callable[[list[BaseMessage]], "str | AIMessage"]


class ScriptedChatModel(BaseChatModel):
    """A chat model that replays written replies, for tests.

    Each reply is raw model text (parsed exactly like the embedded model's output), a ready
    :class:`AIMessage`, or a function of the messages so far. Every call's messages and bound
    tools are recorded in ``seen``.
    """

    replies: list[Any]
    seen: list[dict[str, Any]] = Field(default_factory=list)
    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def _llm_type(self) -> str:
        return "bia-scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        """Record the tools and return a runnable that passes them on each call."""
        return self.bind(tools=_tool_schemas(tools), **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        index = len(self.seen)
        self.seen.append({"messages": list(messages), "tools": kwargs.get("tools") or []})
        if index >= len(self.replies):
            raise AssertionError(f"the scripted model has only {len(self.replies)} replies")
        reply = self.replies[index]
        if callable(reply):
            reply = reply(list(messages))
        message = reply if isinstance(reply, AIMessage) else message_from_text(str(reply))
        return ChatResult(generations=[ChatGeneration(message=message)])


# -- OpenAI-compatible ------------------------------------------------------------------------

_VISION_HINTS = ("gpt-4o", "gpt-4.1", "gpt-5", "vision", "-vl", "llava", "gemma3", "gemma-3",
                 "pixtral", "minicpm-v", "moondream", "claude")


def config_path() -> Path:
    """``$BIA_CONFIG``, else ``~/.config/bia/config.toml``."""
    env = os.environ.get("BIA_CONFIG")
    return Path(env) if env else Path.home() / ".config" / "bia" / "config.toml"


def load_config(path: Path | None = None) -> dict[str, Any]:
    """Backend settings: the config file's ``[model]`` table overridden by the environment.

    Keys: ``model``, ``base_url``, ``api_key``, ``vision``, ``threads``. Environment variables:
    ``BIA_MODEL``, ``BIA_BASE_URL``, ``BIA_API_KEY`` (falling back to ``OPENAI_BASE_URL`` and
    ``OPENAI_API_KEY``).
    """
    path = path or config_path()
    settings: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise BackendError(f"config file {path} is not valid TOML: {exc}") from None
        settings.update(data.get("model", data))
    for key, names in {
        "model": ("BIA_MODEL",),
        "base_url": ("BIA_BASE_URL", "OPENAI_BASE_URL"),
        "api_key": ("BIA_API_KEY", "OPENAI_API_KEY"),
    }.items():
        for name in names:
            if os.environ.get(name):
                settings[key] = os.environ[name]
                break
    return settings


def openai_chat_model(model: str, *, base_url: str | None = None, api_key: str | None = None,
                      vision: bool | None = None) -> tuple[BaseChatModel, ModelInfo]:
    """A :class:`ChatOpenAI` for any OpenAI-compatible server.

    Local servers (Ollama, llama.cpp, vLLM, LM Studio) accept any key; ``"none"`` is sent when
    no key is configured and a base URL is.
    """
    from langchain_openai import ChatOpenAI

    if not base_url and not api_key:
        raise BackendError(
            f"model {model!r} needs a server: give --base-url (e.g. http://localhost:11434/v1 "
            "for Ollama) or set BIA_BASE_URL / OPENAI_API_KEY, or a [model] table in "
            f"{config_path()}"
        )
    chat = ChatOpenAI(model=model, base_url=base_url, api_key=api_key or "none",
                      temperature=0, max_retries=1, timeout=300)
    looks_vision = any(hint in model.lower() for hint in _VISION_HINTS)
    info = ModelInfo("openai", model, base_url=base_url or "https://api.openai.com/v1",
                     vision=looks_vision if vision is None else vision)
    return chat, info


EMBEDDED_ALIASES = {
    "embedded": weights.DEFAULT_SIZE, "local": weights.DEFAULT_SIZE,
    "0.5b": "0.5b", "qwen2.5-coder-0.5b": "0.5b", "qwen2.5-coder-0.5b-instruct": "0.5b",
    "1.5b": "1.5b", "qwen2.5-coder-1.5b": "1.5b", "qwen2.5-coder-1.5b-instruct": "1.5b",
}


def make_chat_model(model: str | None = None, *, base_url: str | None = None,
                    api_key: str | None = None, vision: bool | None = None,
                    progress: bool = True) -> tuple[BaseChatModel, ModelInfo]:
    """Choose and set up a chat model.

    Parameters
    ----------
    model : str, optional
        ``embedded`` (default), ``0.5b``, ``1.5b``, a path to a ``.gguf`` file, or a server's
        model name (then a base URL or an OpenAI key is needed).
    base_url, api_key : str, optional
        An OpenAI-compatible server; default from :func:`load_config`.
    vision : bool, optional
        Send images to the model; guessed from the model name when not given.
    progress : bool
        Show a spinner while loading.
    """
    settings = load_config()
    base_url = base_url or settings.get("base_url")
    api_key = api_key or settings.get("api_key")
    model = model or settings.get("model")
    if vision is None and "vision" in settings:
        vision = bool(settings["vision"])
    if model and model.endswith(".gguf"):
        return embedded_chat_model(model_path=model, progress=progress)
    if model is None and not base_url:
        model = "embedded"
    if model is not None and model.lower() in EMBEDDED_ALIASES and not base_url:
        return embedded_chat_model(EMBEDDED_ALIASES[model.lower()], progress=progress,
                                   n_threads=settings.get("threads"))
    return openai_chat_model(model or "gpt-4o-mini", base_url=base_url, api_key=api_key,
                             vision=vision)

"""Chat models behind one interface: embedded GGUF, any OpenAI-compatible server, scripted.

The planner asks a model for one text (a plan) with :func:`complete`:

* :class:`LlamaCppChatModel` runs a Qwen2.5-Coder Instruct GGUF in-process with llama-cpp-python,
  its output constrained by a GBNF grammar (:mod:`agent.grammar`). The prompt's fixed prefix
  (the system message) is evaluated once: llama-cpp reuses the longest shared token prefix of
  consecutive prompts in one process, and the prefix's state is saved to a file so that a new
  process loads it instead of evaluating it again.
* :func:`openai_chat_model` reaches OpenAI, Ollama, vLLM, a llama.cpp server or LM Studio by base
  URL and key (a :class:`langchain_openai.ChatOpenAI`). Its output is constrained by a JSON
  schema of plans (:mod:`agent.plan_schema`, sent as ``response_format``) and turned into plan
  text; a server that refuses ``response_format`` answers in plain text from then on. Either way
  the planner checks the plan exactly as the embedded model's. With vision, the request's
  images go with it as PNG thumbnails.
* :class:`ScriptedChatModel` replays replies written in a test.

:func:`make_chat_model` picks one from a model name, a base URL and the configuration
(:func:`load_config`).
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import hashlib
import json
import logging
import os
import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field

from agent import weights
from tools.errors import BiaError, InputError

if TYPE_CHECKING:
    from agent.plan import PlanError
    from agent.plan_schema import PlanSchema
    from tools.types import ImageMeta

_LOG = logging.getLogger(__name__)


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
    load_seconds: float = 0.0
    max_tools: int = 10
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``provenance.json``."""
        return {
            "backend": self.backend, "name": self.name, "file": self.file, "sha256": self.sha256,
            "base_url": self.base_url, "vision": self.vision, **self.extra,
        }


def _system_and_user(messages: Sequence[BaseMessage]) -> tuple[str, str]:
    """The system messages' text and the others' text: a planner prompt's two parts."""
    system = "\n".join(_text_of(m.content) for m in messages if isinstance(m, SystemMessage))
    user = "\n".join(_text_of(m.content) for m in messages if not isinstance(m, SystemMessage))
    return system, user


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


@dataclass
class Completion:
    """One generated text and what it cost.

    Attributes
    ----------
    text : str
        What the model wrote.
    prompt_tokens : int
        Tokens in the prompt.
    evaluated_tokens : int
        Prompt tokens actually evaluated (the rest came from the cached prefix).
    generated_tokens : int
        Tokens generated.
    prompt_seconds : float
        Time to the first generated token (prompt evaluation).
    generate_seconds : float
        Time for the generated tokens after the first.
    raw : str
        The reply as the model wrote it, when ``text`` was made from it (JSON turned into
        plan text); else "".
    error : PlanError or None
        Why the reply could not be made into plan text (malformed JSON): a plan error like
        any other, for the planner's re-plan.
    """

    text: str
    prompt_tokens: int = 0
    evaluated_tokens: int = 0
    generated_tokens: int = 0
    prompt_seconds: float = 0.0
    generate_seconds: float = 0.0
    raw: str = ""
    error: PlanError | None = None


def prefix_cache_dir() -> Path:
    """Where saved prefix states live: ``$BIA_CACHE/prefix`` or ``~/.cache/bia/prefix``."""
    base = os.environ.get("BIA_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "bia") / "prefix"


@functools.lru_cache(maxsize=8)
def _grammar(text: str) -> Any:
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(text, verbose=False)


class LlamaCppChatModel(BaseChatModel):
    """A GGUF chat model run in-process by llama-cpp-python with its own chat template.

    Parameters
    ----------
    model_path : str
        The GGUF file.
    n_ctx : int
        Context length in tokens (llama-cpp's default of 512 is too short for a plan prompt).
    n_threads : int
        CPU threads.
    max_tokens : int
        Most tokens generated per reply.
    temperature : float
        0 means greedy decoding, so answers are reproducible.
    """

    model_path: str
    n_ctx: int = 4096
    n_threads: int = Field(default_factory=default_threads)
    max_tokens: int = 256
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

    def render_prompt(self, messages: Sequence[BaseMessage]) -> str:
        """The exact prompt text the model sees."""
        metadata = self.llama.metadata
        template = metadata.get("tokenizer.chat_template")
        if not template:
            raise BackendError(f"{self.model_path} has no chat template; use an Instruct model")
        vocab = self.llama
        bos = vocab.detokenize([vocab.token_bos()]).decode("utf-8", "ignore") \
            if vocab.token_bos() >= 0 else ""
        eos = vocab.detokenize([vocab.token_eos()]).decode("utf-8", "ignore")
        return _render_template(template, to_template_messages(messages), None, bos, eos)

    def _tokens(self, text: str) -> list[int]:
        return list(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _load_prefix(self, prefix: str) -> None:
        """Have the prefix's state in the context: from memory, a saved file, or evaluated.

        The file is keyed by the model file, the context size and the prefix tokens, so a new
        process (a new ``bia run``) skips evaluating the fixed prefix.
        """
        llama = self.llama
        tokens = self._tokens(prefix)
        n = len(tokens)
        if n == 0 or n >= self.n_ctx:
            return
        if llama.n_tokens >= n and list(llama.input_ids[:n]) == tokens:
            return
        key = hashlib.sha256(json.dumps(
            [os.path.abspath(self.model_path), os.path.getsize(self.model_path), self.n_ctx,
             tokens]).encode()).hexdigest()[:24]
        path = prefix_cache_dir() / f"{key}.state"
        import llama_cpp

        if path.is_file():
            out = (llama_cpp.llama_token * self.n_ctx)()
            count = ctypes.c_size_t(0)
            ok = llama_cpp.llama_state_load_file(llama._ctx.ctx, str(path).encode(), out,
                                                 self.n_ctx, ctypes.byref(count))
            if ok and count.value == n and list(out[:n]) == tokens:
                llama.input_ids[:n] = tokens
                llama.n_tokens = n
                llama._requires_eval = True
                return
        llama.reset()
        llama.eval(tokens)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            array = (llama_cpp.llama_token * n)(*tokens)
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            if llama_cpp.llama_state_save_file(llama._ctx.ctx, str(partial).encode(), array, n):
                partial.replace(path)
        except OSError:  # a read-only cache only costs the next process the prefix's time
            pass

    def complete(self, system: str, user: str, *, grammar: str | None = None,
                 schema: PlanSchema | None = None, images: Sequence[Any] = (),
                 temperature: float | None = None, seed: int = 0,
                 max_tokens: int | None = None) -> Completion:
        """Generate a reply to one system and one user message, optionally under a grammar.

        Parameters
        ----------
        system : str
            The fixed part of the prompt (its state is cached and reused).
        user : str
            The request's part.
        grammar : str, optional
            GBNF text that the output must match.
        schema : PlanSchema, optional
            Not used: the grammar says the same, and more.
        images : sequence, optional
            Not used: the embedded models have no vision (refused by :func:`make_chat_model`).
        temperature : float, optional
            Sampling temperature (the model's own by default; 0 is greedy).
        seed : int
            Sampling seed.
        max_tokens : int, optional
            Most tokens to generate.

        Returns
        -------
        Completion
        """
        llama = self.llama
        messages = [SystemMessage(content=system), HumanMessage(content=user)]
        prompt = self.render_prompt(messages)
        marker = "\x00user-part\x00"
        prefix = self.render_prompt([SystemMessage(content=system),
                                     HumanMessage(content=marker)]).split(marker)[0]
        self._load_prefix(prefix)
        tokens = self._tokens(prompt)
        cached = 0
        for a, b in zip(llama.input_ids[: llama.n_tokens], tokens, strict=False):
            if a != b:
                break
            cached += 1
        start = time.perf_counter()
        first = None
        pieces = []
        stream = llama.create_completion(
            tokens, max_tokens=max_tokens or self.max_tokens,
            temperature=self.temperature if temperature is None else temperature,
            stop=["<|im_end|>", "<|endoftext|>"], seed=seed, stream=True,
            grammar=_grammar(grammar) if grammar else None,
        )
        for chunk in stream:
            if first is None:
                first = time.perf_counter()
            pieces.append(chunk["choices"][0]["text"])
        end = time.perf_counter()
        text = "".join(pieces)
        first = first or end
        return Completion(
            text=text, prompt_tokens=len(tokens),
            evaluated_tokens=max(1, len(tokens) - cached), generated_tokens=max(
                len(pieces), 1 if text else 0),
            prompt_seconds=first - start, generate_seconds=end - first,
        )

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        done = self.complete(*_system_and_user(messages))
        message = AIMessage(content=done.text, response_metadata={
            "usage": {"prompt_tokens": done.prompt_tokens,
                      "completion_tokens": done.generated_tokens}})
        return ChatResult(generations=[ChatGeneration(message=message)])


def embedded_chat_model(size: str = weights.DEFAULT_SIZE, *, model_path: str | None = None,
                        n_threads: int | None = None, n_ctx: int = 4096,
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
    start = time.perf_counter()
    with Spinner(f"Loading {name} ...", progress):
        model.llama  # noqa: B018 - load now so the time is reported as loading
    info = ModelInfo("embedded", name, file=str(path), sha256=sha,
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

Scripted = str | Callable[[str, str], str]


class ScriptedChatModel(BaseChatModel):
    """A chat model that replays written replies, for tests.

    Each reply is the model's text (a plan, for the planner) or a function of the system and
    user text that returns it. Every call's prompt is recorded in ``seen`` as
    ``{"system": ..., "user": ..., "grammar": ..., "schema": ..., "images": ...}``.
    """

    replies: list[Any]
    seen: list[dict[str, Any]] = Field(default_factory=list)
    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def _llm_type(self) -> str:
        return "bia-scripted"

    def complete(self, system: str, user: str, *, grammar: str | None = None,
                 schema: PlanSchema | None = None, images: Sequence[Any] = (),
                 temperature: float | None = None, seed: int = 0,
                 max_tokens: int | None = None) -> Completion:
        """The next written reply (see :meth:`LlamaCppChatModel.complete`)."""
        index = len(self.seen)
        self.seen.append({"system": system, "user": user, "grammar": grammar,
                          "schema": schema, "images": list(images)})
        if index >= len(self.replies):
            raise AssertionError(f"the scripted model has only {len(self.replies)} replies")
        reply = self.replies[index]
        text = reply(system, user) if callable(reply) else str(reply)
        return Completion(text=text, prompt_tokens=len((system + user).split()),
                          evaluated_tokens=len(user.split()), generated_tokens=len(text.split()))

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        done = self.complete(*_system_and_user(messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=done.text))])


def complete(model: Any, system: str, user: str, *, grammar: str | None = None,
             schema: PlanSchema | None = None, images: Sequence[Any] = (),
             temperature: float | None = None, seed: int = 0,
             max_tokens: int | None = None) -> Completion:
    """One reply from any backend, constrained as far as the backend can be.

    Parameters
    ----------
    model : chat model
        From :func:`make_chat_model`, or any LangChain chat model.
    system, user : str
        The prompt's fixed part and the request's part.
    grammar : str, optional
        GBNF of the reply: the embedded model decodes under it.
    schema : PlanSchema, optional
        The same plans as a JSON schema (:func:`agent.plan_schema.plan_schema`): an
        OpenAI-compatible server gets it as ``response_format`` and its JSON comes back as plan
        text (:attr:`Completion.text`; a malformed reply sets :attr:`Completion.error`).
    images : sequence of Artifact or ndarray
        The request's images: sent (as PNG thumbnails) to a server model with vision, not to
        others.
    temperature : float, optional
        Sampling temperature.
    seed : int
        Sampling seed (the embedded model's).
    max_tokens : int, optional
        Most tokens to generate.

    Other LangChain chat models get the two messages and answer in plain text, which the
    planner checks exactly as it checks the embedded model's.
    """
    if hasattr(model, "complete"):
        return model.complete(system, user, grammar=grammar, schema=schema, images=images,
                              temperature=temperature, seed=seed, max_tokens=max_tokens)
    start = time.perf_counter()
    kwargs: dict[str, Any] = {}
    if temperature is not None:
        kwargs["temperature"] = temperature
    message = model.invoke([SystemMessage(content=system), HumanMessage(content=user)],
                           **kwargs)
    seconds = time.perf_counter() - start
    usage = getattr(message, "usage_metadata", None) or {}
    return Completion(text=_text_of(getattr(message, "content", message)),
                      prompt_tokens=int(usage.get("input_tokens", 0)),
                      evaluated_tokens=int(usage.get("input_tokens", 0)),
                      generated_tokens=int(usage.get("output_tokens", 0)),
                      prompt_seconds=0.0, generate_seconds=seconds)


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


def image_data_url(image: np.ndarray, meta: ImageMeta | None = None, *,
                   max_size: int = 512) -> str:
    """A thumbnail of an image as a ``data:image/png;base64`` URL, for a vision model.

    One 2D picture: the first time point, the first channel (all three of an RGB image), a
    maximum projection over Z; contrast-stretched to 8 bits between the 0.5th and 99.8th
    percentiles (8-bit images as they are); shrunk to at most ``max_size`` pixels a side.

    Parameters
    ----------
    image : (..., M, N) ndarray or (M, N, 3) ndarray
        The image; axes from ``meta``, else the last two are Y and X (an RGB image's last
        axis is its colour).
    meta : ImageMeta, optional
        Its axes (``"TCZYX"`` letters) and whether it is RGB (``extra["rgb"]``).
    max_size : int
        Longest side of the thumbnail, in pixels.

    Returns
    -------
    str

    Raises
    ------
    InputError
        An empty image, or one with more than 5 axes.

    Examples
    --------
    >>> url = image_data_url(np.zeros((3, 1024, 2048), np.uint16))
    >>> url.startswith("data:image/png;base64,")
    True
    """
    import base64
    import io

    from PIL import Image as PILImage

    data = np.asarray(image)
    if data.size == 0 or data.ndim < 2 or data.ndim > 5:
        raise InputError(f"cannot show an image of shape {data.shape} to a vision model")
    if max_size < 1:
        raise InputError(f"max_size must be at least 1, got {max_size}")
    axes = meta.axes if meta is not None and len(meta.axes) == data.ndim else None
    rgb = False
    if axes is None and data.ndim == 3 and data.shape[-1] in (3, 4):
        data, axes, rgb = np.moveaxis(data, -1, 0), "CYX", True
    elif axes is None:
        axes = {2: "YX", 3: "ZYX", 4: "CZYX", 5: "TCZYX"}[data.ndim]
    else:
        rgb = bool(meta is not None and meta.extra.get("rgb"))
    if "T" in axes:
        data, axes = np.take(data, 0, axis=axes.index("T")), axes.replace("T", "")
    if "Z" in axes:
        data, axes = data.max(axis=axes.index("Z")), axes.replace("Z", "")
    if "C" in axes:
        c = axes.index("C")
        if rgb and data.shape[c] in (3, 4):
            data = np.moveaxis(np.take(data, [0, 1, 2], axis=c), c, -1)
        else:
            data = np.take(data, 0, axis=c)
    if data.dtype == np.bool_:
        picture = data.astype(np.uint8) * 255
    elif data.dtype == np.uint8:
        picture = data
    else:
        values = data.astype(np.float64)
        finite = values[np.isfinite(values)]
        low, high = np.percentile(finite, [0.5, 99.8]) if finite.size else (0.0, 1.0)
        scaled = (np.nan_to_num(values, nan=low) - low) / max(high - low, 1e-12)
        picture = np.round(np.clip(scaled, 0, 1) * 255).astype(np.uint8)
    thumb = PILImage.fromarray(np.ascontiguousarray(picture))
    thumb.thumbnail((max_size, max_size))
    buffer = io.BytesIO()
    thumb.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _image_blocks(images: Sequence[Any]) -> list[dict[str, Any]]:
    """``image_url`` content blocks of the images among ``images`` (artifacts or arrays)."""
    blocks = []
    for item in images:
        if isinstance(item, np.ndarray):
            data, meta = item, None
        elif getattr(item, "kind", None) == "image" and isinstance(
                getattr(item, "data", None), np.ndarray):
            data, meta = item.data, item.meta
        else:
            continue  # labels, tables: the model is shown the images the request names
        blocks.append({"type": "image_url", "image_url": {"url": image_data_url(data, meta)}})
    return blocks


@functools.cache
def _openai_class() -> type:
    """:class:`ChatOpenAI` with bia's ``complete`` (imported late: ``bia --help`` stays fast)."""
    from langchain_openai import ChatOpenAI

    class OpenAIPlanModel(ChatOpenAI):
        """A chat model on an OpenAI-compatible server that writes plans under a JSON schema.

        ``vision`` says whether images go with the request; ``structured_output`` is None
        until the server has answered a ``response_format``, then whether it took it (a
        server that refused it gets plain text for the rest of the session).
        """

        vision: bool = False
        structured_output: bool | None = None

        def complete(self, system: str, user: str, *, grammar: str | None = None,
                     schema: PlanSchema | None = None, images: Sequence[Any] = (),
                     temperature: float | None = None, seed: int = 0,
                     max_tokens: int | None = None) -> Completion:
            """One reply, under ``schema`` where the server has structured output.

            The grammar and the seed are not used (see :func:`complete`).
            """
            return _openai_complete(self, system, user, schema=schema, images=images,
                                    temperature=temperature, max_tokens=max_tokens)

    return OpenAIPlanModel


def _openai_complete(chat: Any, system: str, user: str, *, schema: PlanSchema | None,
                     images: Sequence[Any], temperature: float | None,
                     max_tokens: int | None) -> Completion:
    import openai

    from agent.plan import PlanError, PlanSyntaxError

    blocks = _image_blocks(images) if chat.vision else []
    kwargs: dict[str, Any] = {}
    if temperature is not None:
        kwargs["temperature"] = temperature
    if max_tokens:
        kwargs["max_tokens"] = max_tokens
    where = chat.openai_api_base or "https://api.openai.com/v1"

    def ask(text: str, **extra: Any) -> Any:
        content: Any = [{"type": "text", "text": text}, *blocks] if blocks else text
        return chat.invoke([SystemMessage(content=system), HumanMessage(content=content)],
                           **kwargs, **extra)

    start = time.perf_counter()
    message = None
    structured = schema is not None and chat.structured_output is not False
    try:
        if structured:
            try:
                message = ask(f"{user}\n\n{schema.instructions}",
                              response_format=schema.response_format())
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                _LOG.debug("%s at %s refused response_format json_schema (%s); plans come as "
                           "plain text for the rest of the session", chat.model_name, where,
                           exc)
                structured = False
            else:
                chat.structured_output = True
        if message is None:
            message = ask(user)
            if schema is not None and chat.structured_output is None:
                chat.structured_output = False
    except openai.APIError as exc:
        raise BackendError(f"the server at {where} failed: {exc}") from None
    seconds = time.perf_counter() - start
    usage = getattr(message, "usage_metadata", None) or {}
    text = _text_of(message.content)
    raw, error = "", None
    if structured and schema is not None:
        raw = text
        refusal = (message.additional_kwargs or {}).get("refusal")
        try:
            if refusal and not text.strip():
                raise PlanSyntaxError(f"the model refused: {refusal}")
            text = schema.plan_text(raw)
        except PlanError as exc:
            error = exc
    return Completion(text=text, prompt_tokens=int(usage.get("input_tokens", 0)),
                      evaluated_tokens=int(usage.get("input_tokens", 0)),
                      generated_tokens=int(usage.get("output_tokens", 0)),
                      prompt_seconds=0.0, generate_seconds=seconds, raw=raw, error=error)


def openai_chat_model(model: str, *, base_url: str | None = None, api_key: str | None = None,
                      vision: bool | None = None) -> tuple[BaseChatModel, ModelInfo]:
    """A :class:`ChatOpenAI` for any OpenAI-compatible server, writing plans under a schema.

    Local servers (Ollama, llama.cpp, vLLM, LM Studio) accept any key; ``"none"`` is sent when
    no key is configured and a base URL is. ``vision`` (guessed from the model's name when
    None) sends the request's images with it.
    """
    if not base_url and not api_key:
        raise BackendError(
            f"model {model!r} needs a server: give --base-url (e.g. http://localhost:11434/v1 "
            "for Ollama) or set BIA_BASE_URL / OPENAI_API_KEY, or a [model] table in "
            f"{config_path()}"
        )
    looks_vision = any(hint in model.lower() for hint in _VISION_HINTS)
    vision = looks_vision if vision is None else vision
    chat = _openai_class()(model=model, base_url=base_url, api_key=api_key or "none",
                           temperature=0, max_retries=1, timeout=300, vision=vision)
    info = ModelInfo("openai", model, base_url=base_url or "https://api.openai.com/v1",
                     vision=vision)
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
        Send the request's images to the model; guessed from the model name when not given.
    progress : bool
        Show a spinner while loading.

    Raises
    ------
    BackendError
        Vision asked of an embedded model, a server model without a server, missing weights.
    """
    settings = load_config()
    base_url = base_url or settings.get("base_url")
    api_key = api_key or settings.get("api_key")
    model = model or settings.get("model")
    if vision is None and "vision" in settings:
        vision = bool(settings["vision"])
    embedded = bool(model and model.endswith(".gguf")) or (
        not base_url and (model is None or model.lower() in EMBEDDED_ALIASES))
    if embedded and vision:
        raise BackendError("the embedded models have no vision; use --base-url with a vision "
                           "model (or leave out --vision)")
    if model and model.endswith(".gguf"):
        return embedded_chat_model(model_path=model, progress=progress)
    if model is None and not base_url:
        model = "embedded"
    if model is not None and model.lower() in EMBEDDED_ALIASES and not base_url:
        return embedded_chat_model(EMBEDDED_ALIASES[model.lower()], progress=progress,
                                   n_threads=settings.get("threads"))
    return openai_chat_model(model or "gpt-4o-mini", base_url=base_url, api_key=api_key,
                             vision=vision)

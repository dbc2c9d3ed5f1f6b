"""The language and vision models a benchmark talks to, behind one small interface.

A model answers a text prompt, optionally with one image. Three kinds exist here:

* :class:`OpenAIChatModel`: any OpenAI-compatible server (``--base-url``, ``--model``, the key
  from an environment variable); images travel as base64 PNG data URLs.
* :class:`ScriptedModel`: fixed answers, for tests and dry runs.
* :class:`AgentBackendModel`: a configured backend of :mod:`agent` (embedded GGUF model and
  others), used when that package provides it.
"""

from __future__ import annotations

import base64
import io
import itertools
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from tools.errors import InputError


class Model(Protocol):
    """Something that answers a prompt, optionally about an image."""

    name: str

    def generate(self, prompt: str, *, image: np.ndarray | None = None,
                 temperature: float = 0.0, seed: int | None = None) -> str:
        """The model's answer text."""
        ...


def image_to_data_url(image: np.ndarray) -> str:
    """An 8-bit PNG of ``image`` (rescaled min..max) as a ``data:image/png;base64`` URL."""
    from PIL import Image as PILImage

    data = np.asarray(image)
    if not (data.ndim == 2 or (data.ndim == 3 and data.shape[-1] in (3, 4))):
        raise InputError(f"can send only a 2D or RGB image to a vision model, got {data.shape}")
    rgb = data
    if rgb.dtype != np.uint8:
        values = rgb.astype(np.float64)
        lo, hi = float(values.min()), float(values.max())
        scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
        rgb = np.round(scaled * 255).astype(np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(rgb).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class OpenAIChatModel:
    """A chat model on an OpenAI-compatible server.

    Parameters
    ----------
    model : str
        Model name on the server.
    base_url : str, optional
        Server URL (e.g. ``http://localhost:8000/v1``); OpenAI's when None.
    api_key_env : str
        Environment variable holding the key; servers that need none get ``"none"``.
    max_tokens : int
        Longest answer.
    timeout : float
        Seconds per request.
    stop : sequence of str
        Generation ends where one of these appears.
    """

    def __init__(self, model: str, base_url: str | None = None, *,
                 api_key_env: str = "OPENAI_API_KEY", max_tokens: int = 1024,
                 timeout: float = 120.0, stop: Sequence[str] = ()) -> None:
        if not model:
            raise InputError("name the model to ask (--model)")
        self.name = model
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.stop = list(stop)
        self._client: Any = None

    def _get_client(self) -> Any:
        if self._client is None:
            from openai import OpenAI

            key = os.environ.get(self.api_key_env) or ("none" if self.base_url else None)
            if key is None:
                raise InputError(
                    f"no API key: set {self.api_key_env}, or give --base-url of a local "
                    "OpenAI-compatible server"
                )
            self._client = OpenAI(base_url=self.base_url, api_key=key, timeout=self.timeout,
                                  max_retries=2)
        return self._client

    def generate(self, prompt: str, *, image: np.ndarray | None = None,
                 temperature: float = 0.0, seed: int | None = None) -> str:
        """Ask the server; the image, if any, goes first as a data URL."""
        content: Any = prompt
        if image is not None:
            content = [
                {"type": "image_url", "image_url": {"url": image_to_data_url(image)}},
                {"type": "text", "text": prompt},
            ]
        extra: dict[str, Any] = {"seed": seed} if seed is not None else {}
        if self.stop:
            extra["stop"] = self.stop
        response = self._get_client().chat.completions.create(
            model=self.name, messages=[{"role": "user", "content": content}],
            temperature=temperature, max_tokens=self.max_tokens, **extra,
        )
        return response.choices[0].message.content or ""

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}  # clients do not pickle; workers make their own


class ScriptedModel:
    """Answers from a list (cycled) or a function of (prompt, image), for tests and dry runs."""

    def __init__(self, answers: Iterable[str] | Callable[[str, np.ndarray | None], str],
                 name: str = "scripted") -> None:
        self.name = name
        if callable(answers):
            self._answer = answers
            self._answers: list[str] | None = None
        else:
            self._answers = list(answers)
            if not self._answers:
                raise InputError("a scripted model needs at least one answer")
            self._cycle = itertools.cycle(self._answers)

    def generate(self, prompt: str, *, image: np.ndarray | None = None,
                 temperature: float = 0.0, seed: int | None = None) -> str:
        """The next scripted answer."""
        if self._answers is None:
            return self._answer(prompt, image)
        return next(self._cycle)


class AgentBackendModel:
    """A chat model configured for the agent (e.g. the embedded Qwen GGUF), asked one message.

    Uses ``agent.backends.make_chat_model``, so the model is set up exactly as the agent sets it
    up; ``spec`` is what the agent accepts: ``embedded``, ``0.5b``, ``1.5b``, a ``.gguf`` path,
    or a server model name. For the embedded model the prompt is rendered with the model's own
    chat template and sampled with the temperature and seed asked for (the agent itself decodes
    greedily), so repeated samples of one task differ.

    Parameters
    ----------
    spec : str
        The agent's model name.
    base_url : str, optional
        An OpenAI-compatible server.
    max_tokens : int
        Longest answer, in tokens.
    stop : sequence of str
        Generation ends where one of these appears (not included in the answer).
    """

    def __init__(self, spec: str, base_url: str | None = None, *, max_tokens: int = 512,
                 stop: Sequence[str] = ()) -> None:
        try:
            from agent.backends import make_chat_model
        except ImportError as exc:
            raise InputError(
                f"model {spec!r} needs the agent's backends (agent/backends.py), which are not "
                "installed in this build; use --generate MODEL with --base-url for an "
                "OpenAI-compatible server instead"
            ) from exc
        if max_tokens < 1:
            raise InputError(f"max_tokens must be at least 1, got {max_tokens}")
        self.name = spec
        self.max_tokens = max_tokens
        self.stop = list(stop)
        self._model, self.info = make_chat_model(spec, base_url=base_url, progress=False)
        self.last_usage: dict[str, Any] = {}

    def generate(self, prompt: str, *, image: np.ndarray | None = None,
                 temperature: float = 0.0, seed: int | None = None) -> str:
        """Ask the backend; these backends read text only."""
        if image is not None:
            raise InputError(f"backend {self.name!r} cannot read images")
        from langchain_core.messages import HumanMessage

        model = self._model
        if hasattr(model, "render_prompt") and hasattr(model, "llama"):
            text = model.render_prompt([HumanMessage(prompt)])
            out = model.llama.create_completion(
                text, max_tokens=self.max_tokens, temperature=temperature,
                seed=0 if seed is None else seed,
                stop=["<|im_end|>", "<|endoftext|>", *self.stop],
            )
            self.last_usage = dict(out.get("usage") or {})
            return str(out["choices"][0]["text"])
        extra: dict[str, Any] = {"temperature": temperature, "max_tokens": self.max_tokens}
        if self.stop:
            extra["stop"] = self.stop
        if seed is not None:
            extra["seed"] = seed
        content = model.bind(**extra).invoke(prompt).content
        return content if isinstance(content, str) else str(content)

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("an embedded model is loaded once per process; do not pickle it")


def resolve_vlm(spec: str, base_url: str | None = None) -> tuple[str, str | None]:
    """``(model, base_url)`` from one ``--vlm`` value: ``MODEL@URL``, ``URL`` or ``MODEL``.

    A URL alone asks the server which models it serves and takes the first.

    Raises
    ------
    InputError
        When the value is empty or the server lists no model.

    Examples
    --------
    >>> resolve_vlm("qwen2-vl@http://127.0.0.1:8000/v1")
    ('qwen2-vl', 'http://127.0.0.1:8000/v1')
    """
    spec = spec.strip()
    if not spec:
        raise InputError("--vlm needs MODEL@URL, a server URL or a model name")
    if "@" in spec and "://" in spec.split("@", 1)[1]:
        model, url = spec.split("@", 1)
        return model, url
    if "://" not in spec:
        return spec, base_url
    from openai import OpenAI

    key = os.environ.get("OPENAI_API_KEY") or "none"
    try:
        models = [m.id for m in OpenAI(base_url=spec, api_key=key, timeout=30).models.list()]
    except Exception as exc:
        raise InputError(f"could not list the models of {spec}: {exc}") from exc
    if not models:
        raise InputError(f"the server {spec} lists no model; give --vlm MODEL@{spec}")
    return models[0], spec


EMBEDDED_SIZES = ("0.5b", "1.5b", "embedded")
"""Model specs that mean the embedded GGUF models (``--generate 1.5b``)."""


def load_model(spec: str, base_url: str | None = None, *,
               api_key_env: str = "OPENAI_API_KEY", max_tokens: int = 1024,
               stop: Sequence[str] = ()) -> Model:
    """A model from a command-line spec.

    ``scripted:ANSWER`` always answers ``ANSWER``; ``agent:NAME`` uses the agent's backend
    ``NAME``; ``0.5b``, ``1.5b`` and ``embedded`` (without a base URL) are the embedded models
    through the agent's backend; anything else is a model name on an OpenAI-compatible server
    (``--base-url``).

    Examples
    --------
    >>> load_model("scripted:42").generate("How many?")
    '42'
    """
    if spec.startswith("scripted:"):
        return ScriptedModel([spec.split(":", 1)[1]], name=spec)
    if spec.startswith("agent:"):
        return AgentBackendModel(spec.split(":", 1)[1], base_url, max_tokens=max_tokens,
                                 stop=stop)
    if spec.lower() in EMBEDDED_SIZES and not base_url:
        return AgentBackendModel(spec.lower(), None, max_tokens=max_tokens, stop=stop)
    return OpenAIChatModel(spec, base_url, api_key_env=api_key_env, max_tokens=max_tokens,
                           stop=stop)

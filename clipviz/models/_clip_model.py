"""ClipModel: the encoder interface clipviz uses, implemented on top of an open_clip model.

Everything above this layer sees only numpy: ``encode_images`` and ``encode_texts`` return
float32, L2-normalised (N, D) arrays.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from clipviz.compute.types import ModelInfo
from clipviz.models._errors import PromptTruncatedWarning

__all__ = ["ClipModel"]


class ClipModel:
    """A loaded CLIP model: image and text encoders returning normalised numpy vectors.

    Create one with :func:`clipviz.models.load_model`.

    Attributes
    ----------
    info : ModelInfo
        ``key`` (identity: name, weights, preprocessing, precision), ``name``, ``logit_scale``,
        ``dim``, and for SigLIP models ``logit_bias`` with ``scoring="sigmoid"``.
    preprocess : callable
        PIL RGB image -> (3, H, W) float tensor, the model's own evaluation transform.
    torch_model : torch.nn.Module
        The underlying open_clip model (in eval mode), for advanced use.
    tokenizer : callable
        open_clip tokenizer of this model: list of str -> (N, context_length) token ids.
    """

    def __init__(
        self,
        torch_model: Any,
        preprocess: Callable[[Any], Any],
        tokenizer: Any,
        *,
        name: str,
        pretrained: str | None,
        key: str,
        device: Any,
        precision: str,
    ):
        import torch
        from open_clip.model import get_input_dtype

        self.torch_model = torch_model.eval().requires_grad_(False)
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.name = name
        self.pretrained = pretrained
        self.device = torch.device(device)
        self.precision = precision
        self.text_batch_size = 512
        self._input_dtype = get_input_dtype(precision) or torch.float32
        self.context_length = int(getattr(tokenizer, "context_length", 0) or 0)
        model_ctx = getattr(torch_model, "context_length", None)
        if model_ctx is not None and self.context_length and model_ctx != self.context_length:
            # the pitfall of an unregistered name: a default 77-token tokenizer for a 16-token model
            raise RuntimeError(
                f"tokenizer context {self.context_length} != model context {model_ctx} for "
                f"{name!r}; the model config was not registered with open_clip"
            )
        logit_scale = float(torch_model.logit_scale.detach().float().exp().reshape(-1)[0])
        bias = getattr(torch_model, "logit_bias", None)  # present on SigLIP models only
        logit_bias = None if bias is None else float(bias.detach().float().reshape(-1)[0])
        dim = int(self.encode_texts(["a photo."]).shape[1])
        self.info = ModelInfo(
            key=key,
            name=name,
            logit_scale=logit_scale,
            dim=dim,
            logit_bias=logit_bias,
            scoring="softmax" if logit_bias is None else "sigmoid",
        )

    # ---- identity -----------------------------------------------------------------------
    @property
    def key(self) -> str:
        """sha256 identity of the vectors (name, weights, preprocessing, precision)."""
        return self.info.key

    @property
    def dim(self) -> int:
        """Embedding dimension D."""
        return self.info.dim

    @property
    def logit_scale(self) -> float:
        """exp() of the learned temperature: zero-shot logits are ``logit_scale * cosine``."""
        return self.info.logit_scale

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) that :attr:`preprocess` produces."""
        size = getattr(self.torch_model.visual, "image_size", 224)
        return (size, size) if isinstance(size, int) else tuple(size)

    @property
    def tower(self) -> tuple[str, bool]:
        """The image tower's class name, and whether it pools by attention (saliency reads it)."""
        visual = self.torch_model.visual
        return type(visual).__name__, getattr(visual, "attn_pool", None) is not None

    @property
    def loaded(self) -> bool:
        """Whether the torch model is built (always, except for a deferred load_model)."""
        return True

    def __repr__(self) -> str:
        tag = f", pretrained={self.pretrained!r}" if self.pretrained else ""
        return (
            f"ClipModel({self.name!r}{tag}, dim={self.dim}, device={str(self.device)!r}, "
            f"precision={self.precision!r}, key={self.key[:12]}...)"
        )

    # ---- encoding -----------------------------------------------------------------------
    def encode_images(self, pixels: Any) -> np.ndarray:
        """Encode preprocessed pixels.

        Parameters
        ----------
        pixels : torch.Tensor
            (N, 3, H, W) as produced by stacking :attr:`preprocess` outputs.

        Returns
        -------
        numpy.ndarray
            (N, D) float32, each row L2-normalised.
        """
        import torch

        if not isinstance(pixels, torch.Tensor) or pixels.ndim != 4:
            shape = getattr(pixels, "shape", None)
            raise TypeError(
                f"encode_images expects a (N, 3, H, W) torch.Tensor from model.preprocess, got "
                f"{type(pixels).__name__} with shape {shape}"
            )
        with torch.inference_mode():
            x = pixels.to(self.device, dtype=self._input_dtype, non_blocking=True)
            feats = self.torch_model.encode_image(x)
            return _normalise(feats)

    def encode_pil(self, images: Sequence[Any]) -> np.ndarray:
        """Preprocess and encode a few PIL RGB images (convenience; for many use embed_images)."""
        import torch

        if not images:
            return np.zeros((0, self.dim), np.float32)
        return self.encode_images(torch.stack([self.preprocess(im) for im in images]))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Encode strings; warns (PromptTruncatedWarning) when one is longer than the context.

        Returns
        -------
        numpy.ndarray
            (N, D) float32, each row L2-normalised.
        """
        import torch

        if isinstance(texts, str):
            raise TypeError("encode_texts expects a list of strings; wrap a single one: [text]")
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.info.dim if hasattr(self, "info") else 0), np.float32)
        self._warn_if_truncated(texts)
        out = []
        with torch.inference_mode(), _one_thread_for_few(len(texts)):
            for start in range(0, len(texts), self.text_batch_size):  # bounded memory
                tokens = self.tokenizer(texts[start : start + self.text_batch_size])
                out.append(_normalise(self.torch_model.encode_text(tokens.to(self.device))))
        return np.concatenate(out)

    def _warn_if_truncated(self, texts: list[str]) -> None:
        if not self.context_length:
            return
        long = [(t, n) for t in texts if (n := _token_count(self.tokenizer, t)) is not None]
        long = [(t, n) for t, n in long if n > self.context_length]
        if long:
            text, n = long[0]
            warnings.warn(
                f"{len(long)} prompt(s) longer than {self.name!r}'s context of "
                f"{self.context_length} tokens were truncated, e.g. {text!r} ({n} tokens); "
                "shorten them so the model sees the whole text",
                PromptTruncatedWarning,
                stacklevel=3,
            )


#: Up to this many texts are encoded on one thread (see ``_one_thread_for_few``).
FEW_TEXTS = 16


@contextlib.contextmanager
def _one_thread_for_few(n: int) -> Iterator[None]:
    """One torch thread while encoding a few texts (a prompt edit), then the setting as it was.

    A handful of short sequences has no work to share: measured on the 2-core machine under
    load, one new prompt took 100-1,800 ms with torch's 2 intra-op threads and 3-110 ms on one.
    """
    import torch

    before = torch.get_num_threads()
    if n > FEW_TEXTS or before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _normalise(feats: Any) -> np.ndarray:
    """fp32 L2 normalisation (fp16 norms lose precision), returned as a CPU numpy array."""

    feats = feats.float()
    feats = feats / feats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return feats.cpu().numpy().astype(np.float32, copy=False)


def _token_count(tokenizer: Any, text: str) -> int | None:
    """Tokens the text needs including start/end markers, before any truncation (None: unknown)."""
    if getattr(tokenizer, "reduction_fn", None) is not None:
        return None  # reduces instead of truncating
    if hasattr(tokenizer, "encode") and hasattr(tokenizer, "sot_token_id"):  # SimpleTokenizer
        return len(tokenizer.encode(text)) + 2
    inner = getattr(tokenizer, "tokenizer", None)  # HFTokenizer / SigLipTokenizer wrap HF ones
    if inner is not None and callable(inner):
        ids = inner(text, truncation=False)["input_ids"]
        return len(ids)
    return None

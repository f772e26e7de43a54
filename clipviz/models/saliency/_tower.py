"""What saliency needs from a ClipModel: its tower type, input pixels, text targets, scores."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["tower_kind", "load_image", "pixels_for", "text_targets", "cosine_scores"]


def tower_kind(model: Any) -> str:
    """``"resnet"`` (open_clip ModifiedResNet) or ``"vit"`` (VisionTransformer)."""
    tower = getattr(model, "tower", None)  # a deferred model knows it without building
    if tower is None:
        visual = getattr(getattr(model, "torch_model", None), "visual", None)
        if visual is None:
            raise TypeError(
                f"saliency needs a clipviz ClipModel (clipviz.load_model(...)), got "
                f"{type(model).__name__}"
            )
        tower = (type(visual).__name__, getattr(visual, "attn_pool", None) is not None)
    kind, attn_pool = tower
    if kind == "ModifiedResNet":
        return "resnet"
    if kind == "VisionTransformer" and not attn_pool:
        return "vit"
    raise ValueError(
        f"saliency supports open_clip's ModifiedResNet and VisionTransformer (class-token "
        f"pooling) image towers; this model's tower is {kind}"
    )


def load_image(image: Any) -> Any:
    """A PIL RGB image from a PIL image or a file path."""
    from PIL import Image

    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"saliency image {str(path)!r} does not exist")
        try:
            with Image.open(path) as im:
                return im.convert("RGB")
        except OSError as err:
            raise ValueError(f"cannot read {str(path)!r} as an image: {err}") from err
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    raise TypeError(f"image must be a PIL image or a file path, got {type(image).__name__}")


def pixels_for(model: Any, images: Sequence[Any]) -> Any:
    """(B, 3, S, S) float tensor on the model's device from PIL images, via model.preprocess."""
    import torch

    x = torch.stack([model.preprocess(im) for im in images])
    return x.to(model.device, dtype=model._input_dtype)


def text_targets(model: Any, prompts: Any) -> Any:
    """(P, D) unit text vectors: prompts as strings, or already-computed (P, D) embeddings."""
    import torch

    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of strings; wrap a single prompt: [prompt]")
    if isinstance(prompts, np.ndarray):
        vectors = prompts.astype(np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != model.dim:
            raise ValueError(
                f"prompt embeddings must be (P, {model.dim}), got shape {vectors.shape}"
            )
    else:
        prompts = [str(p) for p in prompts]
        if not prompts:
            raise ValueError("prompts is empty; give at least one prompt")
        vectors = model.encode_texts(prompts)
    t = torch.from_numpy(vectors).to(model.device)
    return t / t.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def cosine_scores(features: Any, targets: Any) -> Any:
    """(B, P) cosine of image features (B, D) with per-image targets (B, P, D)."""
    f = features.float()
    f = f / f.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return (targets * f[:, None, :]).sum(-1)


def per_prompt_grads(scores: Any, wrt: Any) -> list[Any]:
    """Gradient of each prompt's score (summed over the batch) w.r.t. ``wrt``, one backward each.

    One forward serves every prompt: the graph is kept between the P backward passes, which
    only run through the part of the network after ``wrt``.
    """
    import torch

    n = scores.shape[1]
    return [
        torch.autograd.grad(scores[:, p].sum(), wrt, retain_graph=p < n - 1)[0] for p in range(n)
    ]

"""Grad-ECLIP for CLIP's ViT tower (Zhao et al., "Gradient-based Visual Explanation for
Transformer-based CLIP", ICML 2024).

For the last attention layer: channel importance = the gradient of the image-text cosine with
respect to the class token's attention output; spatial importance = the class token's query-key
scores, min-max "loosened" instead of softmax; the map is ReLU(sum over heads and channels of
both times each patch's value vector). One forward; one backward per prompt through the last
block only. pytorch-grad-cam does not fit: its ViT recipe is plain Grad-CAM on token
activations (no values, no attention), and captum's LayerGradCam likewise; both lack the
attention terms this method needs, so it reads them from a forward hook here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clipviz.models.saliency._registry import register
from clipviz.models.saliency._tower import cosine_scores, per_prompt_grads


def _last_attention(visual: Any) -> Any:
    import torch

    attn = visual.transformer.resblocks[-1].attn
    if not isinstance(attn, torch.nn.MultiheadAttention):
        raise ValueError(
            f"grad-eclip reads torch.nn.MultiheadAttention in the last block; this ViT uses "
            f"{type(attn).__name__}; use method='occlusion' or 'grad-x-input' instead"
        )
    return attn


def _forward_with_attention(visual: Any, pixels: Any) -> tuple[Any, Any, Any]:
    """Image features, the last attention's input (B, N, C) and its output (B, N, C)."""
    attn = _last_attention(visual)
    store: dict[str, Any] = {}

    def hook(module: Any, args: tuple, kwargs: dict, out: Any) -> None:
        store["x"] = args[0] if args else kwargs["query"]
        store["out"] = out[0]

    handle = attn.register_forward_hook(hook, with_kwargs=True)
    try:
        feats = visual(pixels.detach().requires_grad_(True))
    finally:
        handle.remove()
    x, out = store["x"], store["out"]
    if not getattr(visual.transformer, "batch_first", True):
        x, out = x.transpose(0, 1), out.transpose(0, 1)
    return feats, x, out


@register(
    "grad-eclip",
    towers=("vit",),
    summary="Grad-ECLIP: gradient x value x loosened attention, last ViT block",
    reference="Zhao et al., ICML 2024",
)
def grad_eclip_maps(model: Any, pixels: Any, targets: Any) -> np.ndarray:
    """(B, P, S, S) maps for ViT towers."""
    import torch

    visual = model.torch_model.visual
    attn = _last_attention(visual)
    feats, x, out = _forward_with_attention(visual, pixels)
    scores = cosine_scores(feats, targets)
    grads = per_prompt_grads(scores, out)  # P x (B, N, C) (or (N, B, C))
    if not getattr(visual.transformer, "batch_first", True):
        grads = [g.transpose(0, 1) for g in grads]
    b, n, c = x.shape
    heads = attn.num_heads
    with torch.no_grad():
        q, k, v = torch.nn.functional.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, -1)
        split = (b, n, heads, c // heads)
        q, k, v = q.reshape(split), k.reshape(split), v.reshape(split)
        # spatial importance: class query . patch keys, per head, min-max over patches
        lam = torch.einsum("bhd,bnhd->bhn", q[:, 0], k[:, 1:]) / (c // heads) ** 0.5
        lo, hi = lam.amin(-1, keepdim=True), lam.amax(-1, keepdim=True)
        lam = (lam - lo) / (hi - lo).clamp_min(1e-12)
        maps = []
        for g in grads:
            w = (g[:, 0] @ attn.out_proj.weight).reshape(b, heads, c // heads)  # d score / d o
            contrib = torch.einsum("bhd,bnhd->bhn", w, v[:, 1:])
            maps.append(torch.relu((lam * contrib).sum(1)))
        grid = visual.grid_size
        m = torch.stack(maps, 1).reshape(b, len(grads), *grid).float()
        m = torch.nn.functional.interpolate(m, size=pixels.shape[-2:], mode="bilinear")
    return m.cpu().numpy().astype(np.float32)

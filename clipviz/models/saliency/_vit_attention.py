"""Attention probabilities of every block of an open_clip ViT, with their gradients per prompt.

open_clip's blocks call ``nn.MultiheadAttention`` with ``need_weights=False`` (its fused kernel
never forms the attention matrix). A forward hook on each block's attention recomputes the same
output from explicit softmax(q k^T / sqrt(d)) probabilities, so the tower's own code runs
unchanged (layer scale, pooling, final LN and projection) and the probabilities sit in the
autograd graph. ``tests/test_saliency_vit.py`` checks the features match the plain forward.
"""

from __future__ import annotations

from typing import Any

__all__ = ["traced_forward", "attention_grads"]


def _attention_modules(visual: Any) -> list[Any]:
    import torch

    mods = [blk.attn for blk in visual.transformer.resblocks]
    for m in mods:
        if not isinstance(m, torch.nn.MultiheadAttention) or not m._qkv_same_embed_dim:
            raise ValueError(
                f"attention saliency reads torch.nn.MultiheadAttention (packed q, k, v) in every "
                f"block; this ViT uses {type(m).__name__}; use method='occlusion' or "
                f"'grad-x-input' instead"
            )
    return mods


def traced_forward(visual: Any, pixels: Any) -> tuple[Any, list[Any]]:
    """Image features (B, D) and each block's attention probabilities (B, heads, N, N)."""
    import torch

    batch_first = getattr(visual.transformer, "batch_first", True)
    probs: list[Any] = []

    def hook(module: Any, args: tuple, kwargs: dict, out: Any) -> tuple[Any, None]:
        x = args[0] if args else kwargs["query"]
        if not batch_first:
            x = x.transpose(0, 1)
        b, n, c = x.shape
        heads = module.num_heads
        qkv = torch.nn.functional.linear(x, module.in_proj_weight, module.in_proj_bias)
        q, k, v = qkv.reshape(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-1, -2) * (c // heads) ** -0.5, dim=-1)
        probs.append(a)
        o = module.out_proj((a @ v).transpose(1, 2).reshape(b, n, c))
        return (o.transpose(0, 1) if not batch_first else o), None

    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in _attention_modules(visual)]
    try:
        # the tower's weights are frozen: the pixels carry the graph the gradients need
        feats = visual(pixels.detach().requires_grad_(torch.is_grad_enabled()))
    finally:
        for h in handles:
            h.remove()
    return feats, probs


def attention_grads(scores: Any, probs: list[Any]) -> list[list[Any]]:
    """Per prompt, the gradient of its score (summed over the batch) w.r.t. each block's probs."""
    import torch

    n = scores.shape[1]
    return [
        list(torch.autograd.grad(scores[:, p].sum(), probs, retain_graph=p < n - 1))
        for p in range(n)
    ]

"""Attention relevancy for CLIP's ViT tower: Chefer et al.'s gradient-weighted relevancy, attention
rollout, and the two fused over views shifted by half a patch.

- **rollout** (baseline; Abnar and Zuidema, ACL 2020, "Quantifying Attention Flow in
  Transformers"): each block's head-averaged attention mixed half and half with the identity (the
  residual), rows renormalised, multiplied through the blocks; the class token's row over the
  patches. It never looks at the prompt: every prompt gets the same map.
- **chefer** (Chefer, Gur and Wolf, ICCV 2021, "Generic Attention-model Explainability for
  Interpreting Bi-Modal and Encoder-Decoder Transformers"; hila-chefer/Transformer-MM-Explainability,
  its CLIP notebook): relevancy R starts as the identity and each block adds
  mean over heads of ReLU(dscore/dA * A) times R; the class token's row over the patches. The
  score is the image-text cosine, so the map depends on the prompt.
- **chefer-rollout**: both maps min-max normalised and multiplied,
  chefer x rollout ** ``ROLLOUT_WEIGHT`` (a weighted geometric fusion, as ``layercam-fused`` fuses
  two ResNet stages: a patch counts where the prompt's gradients and the attention flow agree),
  rollout averaged over four views of the input: as is and moved by half a patch down, right
  and both (``VIEWS``); Chefer's relevancy, which costs a backward pass per prompt and view, on
  the input as is (``CHEFER_VIEWS``). A ViT sees the image through a fixed patch grid (the bundled ViT: 8 x 8
  cells of 8 px), so one view localises no finer than a patch; grids offset by half a patch
  sample the image at half the stride, the idea behind Amir et al.'s overlapping-patch dense ViT
  features ("Deep ViT Features as Dense Visual Descriptors", 2021), done here by moving the
  input so the positional embeddings stay as trained. On the bundled ViT, Chefer's relevancy
  alone also lights up background patches the class token reads; rollout alone is sharp on the
  object but blind to the prompt, and spreads its mass (mass-in-mask ratio about 3).

Each view's grid maps are bilinearly upsampled to the input before the views are undone and
averaged. All views of an image share one batched forward; each prompt adds one backward
through the tower (rollout needs none). Implemented here rather than with pytorch-grad-cam or
captum: neither exposes attention probabilities (open_clip's fused attention never forms them; ``_vit_attention``
recomputes them in a hook). Nothing here sees a mask, a box or where the image's centre is;
``ROLLOUT_WEIGHT`` and the views were chosen on tuning seeds 555 and 556
(``benchmarks/saliency_tuning.py --tower vit``, ``benchmarks/results/saliency_tuning_vit.json``),
never on the benchmark's seed 777. 200 images per seed, pointing / mass-in-mask ratio, seeds
555 and 556: chefer alone 0.84 / 3.60, 0.885 / 3.65; rollout alone 0.935 / 3.09, 0.93 / 3.12;
fused (weight 2) on one view 0.915 / 5.92, 0.915 / 5.95; rollout over the four views alone
0.98 / 3.08, 0.985 / 3.10 (it points, but ignores the prompt and spreads its mass); fused with
rollout over the four views (these constants) 0.985 / 6.14, 0.96 / 6.14; with chefer over the
four views too (four backward passes per prompt instead of one) 0.995 / 6.14, 0.965 / 6.16.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from clipviz.models.saliency._registry import register
from clipviz.models.saliency._tower import cosine_scores
from clipviz.models.saliency._vit_attention import attention_grads, traced_forward

__all__ = [
    "ROLLOUT_WEIGHT",
    "VIEWS",
    "CHEFER_VIEWS",
    "View",
    "rollout",
    "chefer_relevancy",
    "view_maps",
    "fuse",
]

# exponent of the rollout map in the fused product (tuning seeds, see the module docstring)
ROLLOUT_WEIGHT = 2.0


@dataclass(frozen=True)
class View:
    """One test-time view: flipped along ``flip`` dims, then moved down and right by
    ``shift`` (rows, columns) half patches (the vacated edge repeats the image's edge)."""

    flip: tuple[int, ...] = ()
    shift: tuple[int, int] = (0, 0)

    def pixels(self, x: Any, patch: tuple[int, int]) -> Any:
        import torch.nn.functional as F

        x = x.flip(self.flip) if self.flip else x
        dy, dx = self._px(patch)
        if not (dy or dx):
            return x
        h, w = x.shape[-2:]
        return F.pad(x, (dx, 0, dy, 0), mode="replicate")[..., :h, :w]

    def undo(self, maps: Any, patch: tuple[int, int]) -> Any:
        """Maps on this view's pixels -> maps on the original input's pixels."""
        import torch.nn.functional as F

        dy, dx = self._px(patch)
        if dy or dx:
            h, w = maps.shape[-2:]
            maps = F.pad(maps, (0, dx, 0, dy), mode="replicate")[..., dy : dy + h, dx : dx + w]
        return maps.flip(self.flip) if self.flip else maps

    def _px(self, patch: tuple[int, int]) -> tuple[int, int]:
        return self.shift[0] * patch[0] // 2, self.shift[1] * patch[1] // 2


# the input and its copies moved by half a patch down, right, and both: four patch grids
# offset from one another, so together they localise at half the patch size
VIEWS: tuple[View, ...] = (View(), View(shift=(0, 1)), View(shift=(1, 0)), View(shift=(1, 1)))
# the views chefer-rollout takes Chefer's relevancy from (one backward per prompt each); rollout
# needs no gradients, so it takes every view in VIEWS
CHEFER_VIEWS: tuple[View, ...] = (View(),)


def rollout(probs: list[Any]) -> Any:
    """(B, N-1) attention rollout: the class token's row over the patches."""
    import torch

    n = probs[0].shape[-1]
    eye = torch.eye(n, device=probs[0].device)
    r = eye.expand(probs[0].shape[0], n, n)
    for a in probs:
        mixed = 0.5 * a.mean(1) + 0.5 * eye
        r = (mixed / mixed.sum(-1, keepdim=True)) @ r
    return r[:, 0, 1:]


def chefer_relevancy(probs: list[Any], grads: list[Any]) -> Any:
    """(B, N-1) Chefer et al.'s relevancy: R += mean_h ReLU(grad * A) @ R, class row."""
    import torch

    n = probs[0].shape[-1]
    r = torch.eye(n, device=probs[0].device).expand(probs[0].shape[0], n, n)
    for a, g in zip(probs, grads, strict=True):
        r = r + (g * a).clamp(min=0).mean(1) @ r
    return r[:, 0, 1:]


def view_maps(
    model: Any, pixels: Any, targets: Any, views=VIEWS, with_chefer: bool = True
) -> tuple[Any, Any]:
    """Chefer (B, P, S, S; None without ``with_chefer``) and rollout (B, 1, S, S) maps on the
    input pixels, each the mean over ``views``.

    All views share one forward; each prompt costs one backward through the tower.
    """
    import torch

    visual = model.torch_model.visual
    b, p, _ = targets.shape
    grid, patch = tuple(visual.grid_size), _patch(visual)
    size = tuple(pixels.shape[-2:])
    batch = torch.cat([v.pixels(pixels, patch) for v in views])
    feats, probs = traced_forward(visual, batch)
    grads = []
    if with_chefer:
        grads = attention_grads(cosine_scores(feats, targets.repeat(len(views), 1, 1)), probs)
    with torch.no_grad():
        probs = [a.detach().float() for a in probs]

        def on_input(flat: Any) -> Any:  # (V*B, k, g*g) -> (B, k, S, S), the views undone
            up = _upsample(flat.reshape(len(views), b, -1, *grid), size)
            return torch.stack([v.undo(m, patch) for v, m in zip(views, up, strict=True)]).mean(0)

        roll = on_input(rollout(probs)[:, None])
        if not with_chefer:
            return None, roll
        rel = torch.stack([chefer_relevancy(probs, [x.float() for x in g]) for g in grads], 1)
        return on_input(rel), roll


def _patch(visual: Any) -> tuple[int, int]:
    k = visual.conv1.kernel_size
    return int(k[0]), int(k[1])


def _upsample(maps: Any, size: tuple[int, int]) -> Any:
    """(V, B, k, g, g) -> (V, B, k, S, S), bilinear."""
    import torch

    v, b, k = maps.shape[:3]
    flat = maps.reshape(v * b, k, *maps.shape[-2:]).float()
    up = torch.nn.functional.interpolate(flat, size=size, mode="bilinear")
    return up.reshape(v, b, k, *size)


def _minmax(t: Any) -> Any:
    flat = t.flatten(-2)
    lo, hi = flat.amin(-1)[..., None, None], flat.amax(-1)[..., None, None]
    return (t - lo) / (hi - lo).clamp_min(1e-12)


def fuse(rel: Any, roll: Any, weight: float) -> Any:
    """chefer x rollout ** weight, each min-max normalised (weight 0: chefer alone)."""
    if weight == 0:
        return _minmax(rel)
    return _minmax(rel) * _minmax(roll) ** weight


def _numpy(maps: Any) -> np.ndarray:
    return maps.clamp_min(0).cpu().numpy().astype(np.float32)


@register(
    "chefer-rollout",
    towers=("vit",),
    summary="Chefer relevancy x attention rollout^2, rollout averaged over half-patch shifts",
    reference="Chefer et al., ICCV 2021; Abnar and Zuidema, ACL 2020; half-stride patch "
    "sampling as in Amir et al., 2021 (Deep ViT Features as Dense Visual Descriptors)",
)
def chefer_rollout_maps(model: Any, pixels: Any, targets: Any) -> np.ndarray:
    """(B, P, S, S) fused relevancy maps for ViT towers."""
    import torch

    rel, roll = view_maps(model, pixels, targets, views=CHEFER_VIEWS)
    rest = tuple(v for v in VIEWS if v not in CHEFER_VIEWS)
    if rest:
        with torch.no_grad():
            _, roll_rest = view_maps(model, pixels, targets, views=rest, with_chefer=False)
        roll = (len(CHEFER_VIEWS) * roll + len(rest) * roll_rest) / len(VIEWS)
    return _numpy(fuse(rel, roll, ROLLOUT_WEIGHT))


@register(
    "chefer",
    towers=("vit",),
    summary="Chefer et al.: gradient-weighted attention relevancy over all ViT blocks",
    reference="Chefer et al., ICCV 2021",
)
def chefer_maps(model: Any, pixels: Any, targets: Any) -> np.ndarray:
    """(B, P, S, S) relevancy maps (one view) for ViT towers."""
    rel, _ = view_maps(model, pixels, targets, views=(View(),))
    return _numpy(rel)


@register(
    "rollout",
    towers=("vit",),
    summary="baseline: attention rollout (the same map for every prompt)",
    reference="Abnar and Zuidema, ACL 2020",
)
def rollout_maps(model: Any, pixels: Any, targets: Any) -> np.ndarray:
    """(B, P, S, S): the image's rollout map, repeated for each prompt."""
    import torch

    with torch.no_grad():
        _, roll = view_maps(model, pixels, targets, views=(View(),), with_chefer=False)
    return _numpy(roll).repeat(targets.shape[1], axis=1)

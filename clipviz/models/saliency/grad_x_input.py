"""Baseline: gradient x input (Shrikumar et al., 2016), through captum's InputXGradient.

The score is the image-text cosine; the map is |sum over colour channels of gradient x
normalised pixel|. captum fits: each (image, prompt) pair is one batch row with its own text
vector, so every prompt costs one row of a single batched forward and backward.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clipviz.models.saliency._registry import register
from clipviz.models.saliency._tower import cosine_scores


@register(
    "grad-x-input",
    towers=("resnet", "vit"),
    summary="baseline: |gradient x input| of the image-text cosine, summed over channels",
    reference="Shrikumar et al., 2016 (captum InputXGradient)",
)
def grad_x_input_maps(model: Any, pixels: Any, targets: Any) -> np.ndarray:
    """(B, P, S, S) maps for any tower."""
    try:
        from captum.attr import InputXGradient
    except ImportError as err:
        raise ImportError(
            'method="grad-x-input" needs captum: pip install "clipviz[saliency]"'
        ) from err

    b, p, d = targets.shape
    rows = targets.reshape(b * p, 1, d)
    visual = model.torch_model.visual

    def forward(x: Any) -> Any:
        return cosine_scores(visual(x), rows)

    inputs = pixels.repeat_interleave(p, dim=0).detach().requires_grad_(True)
    attr = InputXGradient(forward).attribute(inputs, target=0)
    maps = attr.sum(1).abs().reshape(b, p, *pixels.shape[-2:])
    return maps.detach().float().cpu().numpy()

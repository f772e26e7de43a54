"""Grad-CAM for CLIP's ResNet tower, scored by image-text cosine (pytorch-grad-cam).

Selvaraju et al., "Grad-CAM", ICCV 2017, applied to CLIP as in OpenAI's RN50 interpretability
examples and gScoreCAM (Chen et al., 2022): the target is the cosine between the image embedding
and the prompt's text embedding, and the layer is a stage of ``ModifiedResNet`` before the
attention pool. pytorch-grad-cam fits this tower as is: a wrapper module returns the cosine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clipviz.models.saliency._registry import register
from clipviz.models.saliency._tower import cosine_scores

# The deepest stage whose map is at least this many cells across: RN50 at 224 px keeps layer4
# (7 x 7, the attention pool's input); the bundled 64 px model gets layer2 (8 x 8), because its
# layer4 is 2 x 2 and too coarse to point at a 11 px shape (measured in the benchmark).
MIN_CELLS = 7


def target_stage(visual: Any, size: int) -> Any:
    """The ResNet stage Grad-CAM reads: the deepest one with >= MIN_CELLS cells across."""
    cells = size // 4  # stem: stride-2 conv then 2x2 average pool
    stages = [visual.layer1, visual.layer2, visual.layer3, visual.layer4]
    chosen = stages[0]
    for i, stage in enumerate(stages):
        if cells // (2**i) >= MIN_CELLS:
            chosen = stage
    return chosen


def _wrapper(visual: Any, targets: Any) -> Any:
    import torch

    class CosineToPrompt(torch.nn.Module):
        """Row n of the batch -> (1,) cosine with its own text vector targets[n]."""

        def __init__(self) -> None:
            super().__init__()
            self.visual = visual

        def forward(self, x: Any) -> Any:
            return cosine_scores(self.visual(x), targets[:, None, :])

    return CosineToPrompt()


@register(
    "gradcam",
    towers=("resnet",),
    summary="Grad-CAM on a late ResNet stage, target = image-text cosine",
    reference="Selvaraju et al., ICCV 2017; CLIP use as in gScoreCAM (Chen et al., ACCV 2022)",
)
def gradcam_maps(model: Any, pixels: Any, targets: Any) -> np.ndarray:
    """(B, P, S, S) Grad-CAM maps; each (image, prompt) pair is one row of one batch."""
    try:
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError as err:
        raise ImportError(
            'method="gradcam" needs pytorch-grad-cam: pip install "clipviz[saliency]"'
        ) from err

    b, p, _ = targets.shape
    size = pixels.shape[-1]
    visual = model.torch_model.visual
    # pytorch-grad-cam scores one target per batch row: repeat each image once per prompt
    rows = pixels.repeat_interleave(p, dim=0).detach().requires_grad_(True)
    wrapper = _wrapper(visual, targets.reshape(b * p, -1))
    with GradCAM(model=wrapper, target_layers=[target_stage(visual, size)]) as cam:
        maps = cam(input_tensor=rows, targets=[ClassifierOutputTarget(0)] * (b * p))
    return maps.reshape(b, p, *maps.shape[-2:]).astype(np.float32)

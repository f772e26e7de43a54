"""Training the bundled CLIPs: ``python -m clipviz.train`` (``--arch vit`` for the ViT model).

Files: ``config.py`` (architectures and recipe), ``data.py`` (pre-generated pairs, caption mix,
augmentation), ``loop.py`` (the training loop with checkpoints and the ResNet model's contrastive
objective), ``distill.py`` (the ViT model's objective: a teacher's frozen text tower, distillation
and class-name targets), ``export.py`` (the bundled open_clip folder format), ``evaluate.py`` (the
four zero-shot accuracies of the model cards).
"""

from __future__ import annotations

from clipviz.train.config import MODEL_CFG, PREPROCESS_CFG, TrainConfig

__all__ = ["MODEL_CFG", "PREPROCESS_CFG", "TrainConfig"]

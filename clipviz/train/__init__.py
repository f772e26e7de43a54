"""Training the bundled ``clipviz-shapes`` CLIP from scratch: ``python -m clipviz.train``.

Files: ``config.py`` (architecture and recipe), ``data.py`` (pre-generated pairs, caption mix,
augmentation), ``loop.py`` (the contrastive training loop with checkpoints), ``export.py`` (the
bundled open_clip folder format), ``evaluate.py`` (the four zero-shot accuracies of the model card).
"""

from __future__ import annotations

from clipviz.train.config import MODEL_CFG, PREPROCESS_CFG, TrainConfig

__all__ = ["MODEL_CFG", "PREPROCESS_CFG", "TrainConfig"]

"""Architecture and training recipe of the bundled model (plain data, no torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MODEL_NAME = "clipviz-shapes"

# open_clip's small ModifiedResNet image tower learns shape where a 64 px ViT did not (see
# shared/TRAINING-TRIALS.md). The text tower is narrow because its 49,408-row token table
# dominates the file size: width 64 keeps the fp16 weights near 10 MB.
MODEL_CFG: dict[str, Any] = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 3},
}
# OpenAI CLIP normalisation, no crop: images are already 64x64.
PREPROCESS_CFG: dict[str, Any] = {
    "size": 64,
    "mode": "RGB",
    "mean": [0.48145466, 0.4578275, 0.40821073],
    "std": [0.26862954, 0.26130258, 0.27577711],
    "interpolation": "bicubic",
    "resize_mode": "shortest",
    "fill_color": 0,
}


@dataclass
class TrainConfig:
    """Everything that determines a training run (saved with every checkpoint)."""

    steps: int = 1500
    seed: int = 0
    n_pairs: int = 70_000
    batch_size: int = 256
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.1
    warmup_frac: float = 0.05
    shape_only_frac: float = 0.10  # captions naming only the shape ("a photo of a circle.")
    colour_only_frac: float = 0.04  # captions naming only the colour ("a red shape")
    variety_frac: float = 0.0  # pairs drawn with clipviz.train.variety (outlines, rotation, ...)
    checkpoint_every: int = 100
    threads: int = 2
    processes: int = 2

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        d["betas"] = tuple(d["betas"])
        return cls(**d)

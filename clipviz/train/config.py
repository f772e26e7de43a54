"""Architecture and training recipe of the bundled model (plain data, no torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MODEL_NAME = "clipviz-shapes"
VIT_MODEL_NAME = "clipviz-shapes-vit"
ARCHS = ("resnet", "vit")

# open_clip's small ModifiedResNet image tower learns shape where a 64 px ViT did not (see
# shared/TRAINING-TRIALS.md). The text tower is narrow because its 49,408-row token table
# dominates the file size: width 64 keeps the fp16 weights near 10 MB.
MODEL_CFG: dict[str, Any] = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 3},
}


def vit_model_cfg(patch: int = 8, width: int = 128, layers: int = 4) -> dict[str, Any]:
    """The ViT model: a ViT image tower beside ``MODEL_CFG``'s text tower (same text side).

    A 64 px ViT trained contrastively from scratch learned colour but not shape (see
    shared/TRAINING-TRIALS.md); it is trained by distillation from the ResNet model instead,
    whose text tower it copies and keeps frozen.
    """
    return {
        "embed_dim": MODEL_CFG["embed_dim"],
        "vision_cfg": {
            "image_size": 64,
            "patch_size": patch,
            "width": width,
            "layers": layers,
            "head_width": 32,
        },
        "text_cfg": dict(MODEL_CFG["text_cfg"]),
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
    # ViT model only (arch "vit"): trained against a frozen teacher (see clipviz.train.distill)
    arch: str = "resnet"
    teacher: str = "clipviz-shapes"  # bundled model name or exported folder
    distill_weight: float = 1.0  # weight of the cosine loss to the teacher's image embeddings
    distill_varied: bool = False  # also distil on the varied pairs (where the teacher errs more)
    label_weight: float = 0.0  # weight of the 6-way shape + 8-way colour prompt classification
    vit_patch: int = 8
    vit_width: int = 128
    vit_layers: int = 4
    # vit only: start the image tower from this exported model (bundled name or folder) instead
    # of a fresh initialisation; the optimiser and the schedule still start afresh
    init_from: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Fields missing from ``d`` (checkpoints written before they existed) take defaults."""
        d = dict(d)
        d["betas"] = tuple(d["betas"])
        return cls(**d)

    def model_cfg(self) -> dict[str, Any]:
        """The open_clip ``model_cfg`` this recipe trains."""
        if self.arch == "resnet":
            return MODEL_CFG
        if self.arch == "vit":
            return vit_model_cfg(self.vit_patch, self.vit_width, self.vit_layers)
        raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}.")

    def model_name(self) -> str:
        return MODEL_NAME if self.arch == "resnet" else VIT_MODEL_NAME

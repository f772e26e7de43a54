"""The ViT model's objective: a ViT image tower learns from a trained teacher, beside its text tower.

A 64 px ViT trained contrastively from scratch learned colour but left shape at chance (see
shared/TRAINING-TRIALS.md): a batch's captions are a weak, sparse signal for where a shape's
edges are. Here the student copies the teacher's whole text side (token table, transformer,
final norm, projection, temperature) and keeps it frozen, so both models share one text space
and one vocabulary; only the image tower trains, on two losses:

- distillation: ``1 - cos`` between the student's and the teacher's embedding of the same
  (augmented) image, a dense target for every image;
- contrastive: CLIP's loss against the frozen text embeddings of the batch's captions, which
  lets the student be right where the teacher is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clipviz.train.config import TrainConfig

# state_dict keys of open_clip.CLIP that are the text side (everything but "visual.")
TEXT_PREFIXES = (
    "token_embedding.",
    "positional_embedding",
    "transformer.",
    "ln_final.",
    "text_projection",
    "logit_scale",
    "attn_mask",
)


def teacher_folder(teacher: str) -> Path:
    """The exported folder of ``teacher``: a bundled model's name or a folder path.

    Raises
    ------
    ValueError
        Neither a bundled name nor a folder holding ``open_clip_config.json``.
    """
    from clipviz.models._bundled import BUNDLED, CONFIG_FILE

    folder = BUNDLED.get(teacher, Path(teacher))
    if not (folder / CONFIG_FILE).is_file():
        raise ValueError(
            f"teacher {teacher!r} is neither a bundled model ({sorted(BUNDLED)}) nor a folder "
            f"holding {CONFIG_FILE}; pass --teacher clipviz-shapes or an exported model folder."
        )
    return folder


def load_teacher(teacher: str) -> Any:
    """The teacher as a frozen open_clip model in eval mode (float32)."""
    from clipviz.train.export import load_exported

    model, _, _ = load_exported(teacher_folder(teacher))
    model = model.float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def build_student(cfg: TrainConfig, teacher: Any) -> Any:
    """A fresh ViT model whose text side is the teacher's, copied and frozen.

    Raises
    ------
    ValueError
        The teacher's text tower has another shape than ``cfg.model_cfg()``'s.
    """
    from clipviz.train.loop import build_model

    student = build_model(cfg.seed, cfg.model_cfg())
    text = {k: v for k, v in teacher.state_dict().items() if k.startswith(TEXT_PREFIXES)}
    own = student.state_dict()
    wrong = [k for k, v in text.items() if k not in own or own[k].shape != v.shape]
    if wrong:
        raise ValueError(
            f"the teacher's text tower does not fit the student's text_cfg "
            f"{cfg.model_cfg()['text_cfg']}: mismatched {wrong[:3]}; use a teacher with that "
            "text tower (the bundled clipviz-shapes has it)."
        )
    student.load_state_dict(text, strict=False)
    for name, p in student.named_parameters():
        if name.startswith(TEXT_PREFIXES):
            p.requires_grad_(False)
    return student


class DistillStep:
    """``(images, tokens) -> (loss, parts)`` for the ViT model; holds student and teacher."""

    def __init__(self, cfg: TrainConfig):
        import open_clip

        self.teacher = load_teacher(cfg.teacher)
        self.model = build_student(cfg, self.teacher)
        self.weight = cfg.distill_weight
        self.loss_fn = open_clip.ClipLoss()

    def __call__(self, images: Any, tokens: Any) -> tuple[Any, dict[str, float]]:
        import torch

        img = self.model.encode_image(images, normalize=True)
        with torch.no_grad():
            target = self.teacher.encode_image(images, normalize=True)
            txt = self.teacher.encode_text(tokens, normalize=True)  # == the student's, frozen
        clip = self.loss_fn(img, txt, self.model.logit_scale.exp())
        distill = (1 - (img * target).sum(-1)).mean()
        return clip + self.weight * distill, {"clip": clip.item(), "distill": distill.item()}

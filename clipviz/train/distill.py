"""The ViT model's objective: a ViT image tower learns from a trained teacher, beside its text tower.

A 64 px ViT trained contrastively from scratch learned colour but left shape at chance (see
shared/TRAINING-TRIALS.md): a batch's captions are a weak, sparse signal for where a shape's
edges are. Here the student copies the teacher's whole text side (token table, transformer,
final norm, projection, temperature) and keeps it frozen, so both models share one text space
and one vocabulary; only the image tower trains, on two losses:

- distillation: ``1 - cos`` between the student's and the teacher's embedding of the same
  (augmented) image, a dense target for every image of the plain renderer (the teacher's own
  training data; on the varied pairs a teacher trained without them is often wrong, so those
  are left to the contrastive loss unless ``distill_varied``);
- labels (``label_weight``): each image's shape classified 6-way and its colour 8-way against
  the frozen text embeddings of the class names. A batch's captions mostly differ in colour,
  so the contrastive loss is nearly solved by colour alone; here every image meets all other
  shapes as negatives. Shape and colour are separate, so no colour-shape combination (held-out
  ones included) is ever a negative.
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


def init_folder(init_from: str) -> Path:
    """The exported folder that ``--init-from`` names: a bundled name, a model or run folder.

    Raises
    ------
    ValueError
        Neither a bundled name, nor a folder holding ``open_clip_config.json``, nor a run
        folder whose ``model/`` holds one.
    """
    from clipviz.models._bundled import BUNDLED, CONFIG_FILE

    folder = BUNDLED.get(init_from, Path(init_from))
    for candidate in (folder, folder / "model"):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise ValueError(
        f"--init-from {init_from!r} is neither a bundled model ({sorted(BUNDLED)}), nor an "
        f"exported folder holding {CONFIG_FILE}, nor a run folder with model/{CONFIG_FILE}; pass "
        "clipviz-shapes-vit or the model folder a ViT run exported."
    )


def init_meta(init_from: str) -> dict[str, Any]:
    """The provenance (``"clipviz"`` key: command, chain) stored with the init model."""
    import json

    from clipviz.models._bundled import CONFIG_FILE

    config = json.loads((init_folder(init_from) / CONFIG_FILE).read_text())
    return config.get("clipviz") or {}


def check_init(cfg: TrainConfig) -> Path:
    """The init model's folder, checked to hold this recipe's image tower.

    Raises
    ------
    ValueError
        The folder is missing (see ``init_folder``) or its ``vision_cfg`` differs from the
        recipe's (another patch size, width or depth).
    """
    import json

    from clipviz.models._bundled import CONFIG_FILE

    folder = init_folder(cfg.init_from)
    theirs = json.loads((folder / CONFIG_FILE).read_text()).get("model_cfg", {})
    ours = cfg.model_cfg()
    if theirs.get("vision_cfg") != ours["vision_cfg"]:
        raise ValueError(
            f"--init-from {cfg.init_from!r} has the image tower {theirs.get('vision_cfg')}, but "
            f"this run trains {ours['vision_cfg']}; pass the same --patch/--width/--layers as "
            "the init model or another --init-from."
        )
    return folder


def init_image_tower(student: Any, cfg: TrainConfig, teacher: Any) -> None:
    """Copy the image tower of ``cfg.init_from`` into ``student`` (text side stays the teacher's).

    Raises
    ------
    ValueError
        The init model's tower does not fit (``check_init``), or it was trained beside another
        text tower than the teacher's (its image embeddings would live in another space).
    """
    from clipviz.train.export import load_exported

    init, _, _ = load_exported(check_init(cfg))
    state = {k: v.float() for k, v in init.state_dict().items()}
    ref = teacher.state_dict()
    other = [k for k in ref if k.startswith(TEXT_PREFIXES) and not _same(state.get(k), ref[k])]
    if other:
        raise ValueError(
            f"--init-from {cfg.init_from!r} was trained beside another text tower than the "
            f"teacher {cfg.teacher!r} (differs in {other[:3]}); pass the teacher it was "
            "distilled from."
        )
    student.load_state_dict(
        {k: v for k, v in state.items() if k.startswith("visual.")}, strict=False
    )


def _same(a: Any, b: Any) -> bool:
    import torch

    return a is not None and a.shape == b.shape and torch.equal(a.float(), b.float())


def load_teacher(teacher: str) -> Any:
    """The teacher as a frozen open_clip model in eval mode (float32)."""
    from clipviz.train.export import load_exported

    model, _, _ = load_exported(teacher_folder(teacher))
    model = model.float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def build_student(cfg: TrainConfig, teacher: Any) -> Any:
    """A ViT model whose text side is the teacher's, copied and frozen.

    Its image tower is fresh, or ``cfg.init_from``'s.

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
    if cfg.init_from:
        init_image_tower(student, cfg, teacher)
    for name, p in student.named_parameters():
        if name.startswith(TEXT_PREFIXES):
            p.requires_grad_(False)
    return student


class DistillStep:
    """``(images, tokens) -> (loss, parts)`` for the ViT model; holds student and teacher."""

    def __init__(self, cfg: TrainConfig, data: Any):
        import open_clip
        import torch

        self.teacher = load_teacher(cfg.teacher)
        self.model = build_student(cfg, self.teacher)
        self.weight = cfg.distill_weight
        self.loss_fn = open_clip.ClipLoss()
        self.label_weight = cfg.label_weight
        self.classes, self.labels = _class_targets(self.teacher, data)
        # which pairs get a distillation target
        self.distilled = torch.arange(len(data)) < (
            len(data) if cfg.distill_varied else data.n_plain
        )

    def __call__(self, images: Any, tokens: Any, index: Any) -> tuple[Any, dict[str, float]]:
        import torch

        img = self.model.encode_image(images, normalize=True)
        with torch.no_grad():
            target = self.teacher.encode_image(images, normalize=True)
            txt = self.teacher.encode_text(tokens, normalize=True)  # == the student's, frozen
        clip = self.loss_fn(img, txt, self.model.logit_scale.exp())
        mask = self.distilled[torch.as_tensor(index)].float()
        distill = ((1 - (img * target).sum(-1)) * mask).sum() / mask.sum().clamp(min=1)
        loss = clip + self.weight * distill
        parts = {"clip": clip.item(), "distill": distill.item()}
        if self.label_weight:
            scale = self.model.logit_scale.exp()
            idx = torch.as_tensor(index)
            label = sum(
                torch.nn.functional.cross_entropy(scale * img @ cls.T, y[idx])
                for cls, y in zip(self.classes, self.labels, strict=True)
            )
            loss = loss + self.label_weight * label
            parts["label"] = label.item()
        return loss, parts


# several phrasings, none of them the evaluation's "a photo of a {}."
_CLASS_TEMPLATES = ("a {}", "a drawing of a {}", "a photo of a {}")


def _class_targets(teacher: Any, data: Any) -> tuple[list, list]:
    """Frozen class-name embeddings (shapes, colours) and every pair's class indices."""
    import open_clip
    import torch

    from clipviz.datasets.shapes import COLOURS, SHAPES
    from clipviz.train.config import MODEL_CFG

    classes, labels = [], []
    for names, column in ((SHAPES, "shape"), (COLOURS, "colour")):
        texts = [t.format(n) for n in names for t in _CLASS_TEMPLATES]
        tokens = open_clip.tokenize(texts, context_length=MODEL_CFG["text_cfg"]["context_length"])
        with torch.no_grad():
            f = teacher.encode_text(tokens, normalize=True).view(
                len(names), len(_CLASS_TEMPLATES), -1
            )
        classes.append(torch.nn.functional.normalize(f.mean(1), dim=-1))
        index = {n: i for i, n in enumerate(names)}
        labels.append(torch.tensor([index[v] for v in data.labels[column]]))
    return classes, labels

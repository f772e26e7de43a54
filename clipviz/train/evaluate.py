"""The four zero-shot accuracies of the model card, using open_clip directly (no clipviz.engine).

- shape, 6-way: "a photo of a circle." ... on images of every combination
- colour, 8-way: "a photo of a red." ... on the same images
- colour x shape, 48-way, on combinations seen in training
- colour x shape, 48-way, on the held-out combinations (all 48 prompts compete)

Each with the single template "a photo of a {}." and with open_clip's 80 ImageNet templates
ensembled (mean of normalised text embeddings, renormalised).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clipviz.datasets.shapes import COLOURS, SHAPES, shapes_array
from clipviz.train.config import PREPROCESS_CFG

RENDERERS = ("own", "redrawn")

SINGLE = ["a photo of a {}."]


def ensemble_templates() -> list[str]:
    """open_clip's 80 OpenAI ImageNet templates as format strings."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return [t("{}") for t in OPENAI_IMAGENET_TEMPLATES]


def class_vectors(model: Any, tokenizer: Any, classnames: list[str], templates: list[str]):
    """(C, D) normalised class embeddings, averaged over templates."""
    import torch

    texts = [t.format(c) for c in classnames for t in templates]
    with torch.no_grad():
        f = model.encode_text(tokenizer(texts)).float()
    f = torch.nn.functional.normalize(f, dim=-1).view(len(classnames), len(templates), -1)
    return torch.nn.functional.normalize(f.mean(1), dim=-1)


def image_vectors(model: Any, images: np.ndarray, batch_size: int = 500):
    """(N, D) normalised image embeddings of uint8 (N, 64, 64, 3) images."""
    import torch

    mean = torch.tensor(PREPROCESS_CFG["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(PREPROCESS_CFG["std"]).view(1, 3, 1, 1)
    out = []
    with torch.no_grad():
        for a in range(0, len(images), batch_size):
            x = torch.from_numpy(images[a : a + batch_size]).permute(0, 3, 1, 2).float() / 255
            out.append(model.encode_image((x - mean) / std).float())
    return torch.nn.functional.normalize(torch.cat(out), dim=-1)


def render_set(renderer: str, n: int, seed: int, split: str, processes: int = 1):
    """(N, 64, 64, 3) uint8 images and their labels from the training renderer or the second one.

    The second renderer (``clipviz.datasets.redrawn``) draws 48-160 px images; they are resized
    to the model's 64 px input with bicubic interpolation, as the model's preprocessing does.
    """
    if renderer == "own":
        images, labels, _ = shapes_array(n, seed, split=split, processes=processes)
        return images, labels
    if renderer == "redrawn":
        from PIL import Image

        from clipviz.datasets.redrawn import redrawn_shapes

        data = redrawn_shapes(n, seed, split=split)
        size = PREPROCESS_CFG["size"]
        arr = [np.asarray(im.resize((size, size), Image.BICUBIC)) for im in data.images]
        return np.stack(arr) if arr else np.zeros((0, size, size, 3), np.uint8), data.labels
    raise ValueError(f"renderer must be one of {RENDERERS}, got {renderer!r}.")


def _accuracy(img, cls, truth: list[str], classnames: list[str]) -> float:
    pred = (img @ cls.T).argmax(1).numpy()
    index = {c: i for i, c in enumerate(classnames)}
    return float(np.mean(pred == np.array([index[t] for t in truth])))


def evaluate(
    model: Any,
    tokenizer: Any,
    *,
    n: int = 2000,
    seed: int = 10_000,
    processes: int = 1,
    ensemble: bool = True,
    renderer: str = "own",
) -> dict[str, dict[str, float]]:
    """Zero-shot top-1 accuracies on fresh images.

    Parameters
    ----------
    model, tokenizer
        An open_clip model (eval mode) and its tokenizer (context length 16).
    n : int
        Images per set (one set of all combinations, one of seen, one of held-out ones).
    seed : int
        Generator seed; training uses small seeds and split "train", so any seed here is fresh.
    ensemble : bool
        Also measure with the 80 templates ensembled (skip for a quick check).
    renderer : {"own", "redrawn"}
        The training data's generator, or the independent second renderer.

    Returns
    -------
    dict
        ``{"single": {...}, "ensemble": {...}}``, each with keys shape, colour, seen, heldout
        (top-1 accuracy in [0, 1]).
    """
    model.eval()
    combos = [f"{c} {s}" for c in COLOURS for s in SHAPES]
    sets = {}
    for split, offset in (("all", 0), ("seen", 1), ("heldout", 2)):
        images, labels = render_set(renderer, n, seed + offset, split, processes)
        sets[split] = (image_vectors(model, images), labels)
    img_all, lab_all = sets["all"]
    results = {}
    kinds = [("single", SINGLE)] + ([("ensemble", ensemble_templates())] if ensemble else [])
    for kind, templates in kinds:
        shape_cls = class_vectors(model, tokenizer, SHAPES, templates)
        colour_cls = class_vectors(model, tokenizer, COLOURS, templates)
        combo_cls = class_vectors(model, tokenizer, combos, templates)
        r = {
            "shape": _accuracy(img_all, shape_cls, list(lab_all["shape"]), SHAPES),
            "colour": _accuracy(img_all, colour_cls, list(lab_all["colour"]), COLOURS),
        }
        for split in ("seen", "heldout"):
            img, lab = sets[split]
            truth = [f"{c} {s}" for c, s in zip(lab["colour"], lab["shape"], strict=True)]
            r[split] = _accuracy(img, combo_cls, truth, combos)
        results[kind] = {k: round(v, 4) for k, v in r.items()}
    return results


def format_table(results: dict[str, dict[str, float]]) -> str:
    """A small text table of the accuracies."""
    rows = ["task        single  ensemble"]
    for k in ("shape", "colour", "seen", "heldout"):
        rows.append(f"{k:<10} {results['single'][k]:7.1%} {results['ensemble'][k]:9.1%}")
    return "\n".join(rows)


def per_combination(
    model: Any,
    tokenizer: Any,
    *,
    n: int = 1000,
    seed: int = 10_003,
    split: str = "heldout",
    renderer: str = "own",
) -> dict[str, dict[str, Any]]:
    """48-way accuracy per true colour-shape combination, with its most common wrong answer.

    Returns ``{"blue circle": {"accuracy": 0.09, "top_error": "blue hexagon", "n": 160}, ...}``
    (single template), the breakdown that shows where compositional generalisation fails.
    """
    from collections import Counter

    combos = [f"{c} {s}" for c in COLOURS for s in SHAPES]
    images, labels = render_set(renderer, n, seed, split, processes=2)
    pred = (
        image_vectors(model, images) @ class_vectors(model, tokenizer, combos, SINGLE).T
    ).argmax(1)
    truth = [f"{c} {s}" for c, s in zip(labels["colour"], labels["shape"], strict=True)]
    out: dict[str, dict[str, Any]] = {}
    for t in sorted(set(truth)):
        got = [combos[int(p)] for p, u in zip(pred, truth, strict=True) if u == t]
        wrong = Counter(g for g in got if g != t).most_common(1)
        out[t] = {
            "accuracy": round(sum(g == t for g in got) / len(got), 4),
            "top_error": wrong[0][0] if wrong else None,
            "n": len(got),
        }
    return out

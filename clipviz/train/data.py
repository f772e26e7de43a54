"""Training pairs: pre-generated images, tokenised captions, and shape-safe augmentation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from clipviz.datasets.shapes import shapes_array
from clipviz.train.config import MODEL_CFG, PREPROCESS_CFG

if TYPE_CHECKING:
    import torch

_SHAPE_ONLY = [
    "a photo of a {shape}",
    "a {shape}",
    "a {size} {shape}",
    "a drawing of a {shape}",
    "a {shape} on a {background} background",
]
_COLOUR_ONLY = ["a {colour} shape", "a photo of a {colour} shape", "something {colour}"]


def mix_captions(
    captions: list[str], labels, seed: int, shape_only: float, colour_only: float
) -> list[str]:
    """Replace a fraction of captions by ones naming only the shape or only the colour.

    The full captions always name colour and shape; zero-shot prompts like "a photo of a
    circle." name one attribute, and a few such captions teach the text tower that form.
    A final "." is added to half of all captions, as in the zero-shot templates.
    """
    rng = np.random.default_rng([seed, 7])
    cols = {k: labels[k].tolist() for k in ("shape", "colour", "size", "background")}
    out = []
    for i, cap in enumerate(captions):
        u = rng.random()
        row = {k: v[i] for k, v in cols.items()}
        if u < shape_only:
            cap = _SHAPE_ONLY[int(rng.integers(len(_SHAPE_ONLY)))].format(**row)
        elif u < shape_only + colour_only:
            cap = _COLOUR_ONLY[int(rng.integers(len(_COLOUR_ONLY)))].format(**row)
        out.append(cap + "." if rng.random() < 0.5 else cap)
    return out


def tokenize(texts: list[str]) -> torch.Tensor:
    """Tokenise with open_clip's BPE at the model's context length (unique texts once)."""
    import open_clip
    import torch

    uniq, inverse = np.unique(np.asarray(texts, dtype=object).astype(str), return_inverse=True)
    tokens = open_clip.tokenize(list(uniq), context_length=MODEL_CFG["text_cfg"]["context_length"])
    return tokens[torch.from_numpy(inverse.reshape(-1))]


class PairData:
    """Pre-generated (image, caption) pairs held as uint8 images and token ids."""

    def __init__(
        self,
        n: int,
        seed: int,
        *,
        shape_only: float,
        colour_only: float,
        variety: float = 0.0,
        processes: int = 2,
    ):
        import torch

        images, labels, captions = _generate(n, seed, variety, processes)
        self.n_plain = n - _n_varied(n, variety)  # pairs [0, n_plain) are the plain renderer's
        self.labels = labels
        self.captions = mix_captions(captions, labels, seed, shape_only, colour_only)
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # N,3,64,64 u8
        self.tokens = tokenize(self.captions)
        self.mean = torch.tensor(PREPROCESS_CFG["mean"]).view(1, 3, 1, 1)
        self.std = torch.tensor(PREPROCESS_CFG["std"]).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return len(self.images)

    def batch_indices(self, step: int, batch_size: int, seed: int) -> np.ndarray:
        """Indices of batch ``step``: epoch-wise permutations that depend only on (seed, epoch)."""
        per_epoch = len(self) // batch_size
        epoch, k = divmod(step, per_epoch)
        perm = np.random.default_rng([seed, 11, epoch]).permutation(len(self))
        return perm[k * batch_size : (k + 1) * batch_size]

    def batch(self, step: int, batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised, augmented images (B,3,64,64) float32 and tokens (B,L) for ``step``."""
        import torch

        idx = torch.from_numpy(self.batch_indices(step, batch_size, seed))
        x = self.images[idx].float().div_(255.0)
        x = augment(x, np.random.default_rng([seed, 13, step]))
        return (x - self.mean) / self.std, self.tokens[idx]


def _n_varied(n: int, variety: float) -> int:
    return int(round(n * variety))


def _generate(n: int, seed: int, variety: float, processes: int):
    """Training images: a ``variety`` share from the varied renderer (last), the rest plain."""
    import pandas as pd

    n_varied = _n_varied(n, variety)
    images, labels, captions = shapes_array(n - n_varied, seed, split="train", processes=processes)
    if n_varied == 0:
        return images, labels, captions
    from clipviz.train.variety import varied_shapes_array

    v_images, v_labels, v_captions = varied_shapes_array(
        n_varied, seed, split="train", processes=processes
    )
    columns = ["shape", "colour", "size", "background"]
    labels = pd.concat([labels[columns], v_labels[columns]], ignore_index=True)
    return np.concatenate([images, v_images]), labels, captions + v_captions


def augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Flips and quarter turns: every shape stays whole and keeps its name (no crops)."""
    import torch

    n = x.shape[0]
    hflip = torch.from_numpy(rng.random(n) < 0.5).view(n, 1, 1, 1)
    x = torch.where(hflip, x.flip(3), x)
    k = int(rng.integers(4))  # one quarter turn per batch keeps it a cheap tensor op
    return torch.rot90(x, k, dims=(2, 3)) if k else x

"""The two steps of a store job on a batch of rows, shared by the local and the Ray engine.

``prepare_batch`` reads, hashes, decodes and preprocesses files (CPU work, no model);
``encode_batch`` runs the image encoder on the rows that could be read. Both take and return
plain dicts of numpy arrays, the batch format of Ray Data, so the Ray engine maps them over
its blocks unchanged and the local engine calls them in a loop: the two engines cannot drift.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clipviz.engine._decode import ImageSkipped, decode_bytes, read_bytes
from clipviz.engine.imageset import hash_raw

__all__ = ["ModelSpec", "prepare_batch", "encode_batch"]


class ModelSpec:
    """How to load the model in a worker: the arguments of :func:`clipviz.load_model`."""

    def __init__(self, name: str, pretrained: str | None, device: str, precision: str):
        self.name, self.pretrained = name, pretrained
        self.device, self.precision = device, precision

    def load(self) -> Any:
        from clipviz.models import load_model

        return load_model(self.name, self.pretrained, device=self.device, precision=self.precision)


def prepare_batch(batch: dict[str, np.ndarray], preprocess: Any) -> dict[str, np.ndarray]:
    """Rows ``{"row", "path"}`` -> ``{"row", "hash", "reason", "pixels"}``.

    A file that cannot be read or decoded keeps its row with an empty hash, a reason, and
    zero pixels, so no row is ever lost between the steps.
    """
    rows = np.asarray(batch["row"], np.int64)
    paths = [str(p) for p in batch["path"]]
    hashes, reasons, pixels = [], [], []
    for path in paths:
        digest, reason, px = _prepare_one(path, preprocess)
        hashes.append(digest)
        reasons.append(reason)
        pixels.append(px)
    shape = next((p.shape for p in pixels if p is not None), (3, 1, 1))
    stacked = np.zeros((len(paths), *shape), np.float32)
    for i, px in enumerate(pixels):
        if px is not None:
            stacked[i] = px
    return {
        "row": rows,
        "hash": np.array(hashes, dtype=str),  # fixed-width unicode: an Arrow string column
        "reason": np.array(reasons, dtype=str),
        "pixels": stacked,
    }


def _prepare_one(path: str, preprocess: Any) -> tuple[str, str, np.ndarray | None]:
    try:
        raw = read_bytes(path)
        digest = hash_raw(raw)
        px = preprocess(decode_bytes(raw, path))
        return digest, "", np.asarray(px, np.float32)
    except ImageSkipped as err:
        return "", err.reason, None
    except (OSError, ValueError) as err:  # preprocessing of an odd image (e.g. 0-sized)
        return "", f"cannot preprocess {path!r}: {err}", None


def encode_batch(model: Any, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Prepared rows -> ``{"row", "hash", "reason", "vector"}`` (float32, L2-normalised;
    zeros for skipped rows)."""
    import torch

    reasons = batch["reason"]
    ok = np.array([not r for r in reasons], bool)
    vectors = np.zeros((len(ok), model.info.dim), np.float32)
    if ok.any():
        pixels = torch.from_numpy(np.ascontiguousarray(batch["pixels"][ok]))
        vectors[ok] = model.encode_images(pixels)
    return {"row": batch["row"], "hash": batch["hash"], "reason": reasons, "vector": vectors}

"""Model manifests: what a loaded model told us, so that a new kernel can defer loading it.

After a model is built, its ``ModelInfo`` (key, dim, logit scale and bias) and a few facts
(image size, text context, image tower class) are saved as one small JSON file under
``<cache root>/models/v1/<manifest key>-<sha256 of the file>.json``. The manifest key hashes
everything the facts depend on: the model name, the sha256 of the weights file and of its
config, the precision, the preprocessing options, and the versions of clipviz, open_clip and
torch. A file whose checksum does not match, or whose fields are not what this version writes,
is ignored (the model is then loaded at once, as without a manifest).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from clipviz._cache_dir import default_cache_dir, verified_files
from clipviz.compute.types import ModelInfo

__all__ = ["Manifest", "manifest_key", "read", "write", "forget"]

_LAYOUT = "v1"


@dataclass(frozen=True)
class Manifest:
    """What a deferred model needs to know before (or without) building its torch model."""

    info: ModelInfo
    image_size: tuple[int, int]
    context_length: int
    tower: tuple[str, bool]  # image tower class name, and whether it pools by attention

    def to_json(self) -> str:
        return json.dumps(
            {
                "info": asdict(self.info),
                "image_size": list(self.image_size),
                "context_length": self.context_length,
                "tower": list(self.tower),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse what :meth:`to_json` wrote; ValueError/KeyError/TypeError on anything else."""
        raw = json.loads(text)
        info = ModelInfo(**raw["info"])
        if not (isinstance(info.key, str) and isinstance(info.dim, int) and info.dim > 0):
            raise ValueError(f"bad model info in a manifest: {info}")
        height, width = (int(x) for x in raw["image_size"])
        kind, attn_pool = raw["tower"]
        return cls(info, (height, width), int(raw["context_length"]), (str(kind), bool(attn_pool)))


def manifest_key(**parts: Any) -> str:
    """sha256 over ``parts`` (name, weights and config digests, precision, ...) and versions."""
    versions = {dist: _version(dist) for dist in ("clipviz", "open_clip_torch", "torch")}
    payload = json.dumps({"v": 1, **parts, "versions": versions}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def folder(root: str | os.PathLike | None = None) -> Path:
    return Path(root if root is not None else default_cache_dir()) / "models" / _LAYOUT


def read(key: str, root: str | os.PathLike | None = None) -> Manifest | None:
    """The saved manifest for ``key``, or None (none, damaged, or of another format)."""
    for data in verified_files(folder(root), key, ".json"):
        try:
            return Manifest.from_json(data.decode("utf-8"))
        except (ValueError, KeyError, TypeError):
            continue
    return None


def write(key: str, manifest: Manifest, root: str | os.PathLike | None = None) -> None:
    """Save ``manifest`` atomically (best effort: an unwritable cache just means no deferral)."""
    data = manifest.to_json().encode("utf-8")
    base = folder(root)
    final = base / f"{key}-{hashlib.sha256(data).hexdigest()}.json"
    tmp = None
    try:
        base.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=base, prefix=".", suffix=".tmp", delete=False) as f:
            tmp = f.name
            f.write(data)
        os.replace(tmp, final)
    except OSError:
        return
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    for old in base.glob(f"{key}-*.json"):
        if old != final:
            old.unlink(missing_ok=True)


def forget(key: str, root: str | os.PathLike | None = None) -> None:
    """Remove every manifest saved for ``key``."""
    for path in folder(root).glob(f"{key}-*.json"):
        path.unlink(missing_ok=True)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None

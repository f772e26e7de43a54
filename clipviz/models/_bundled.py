"""The models that ship inside clipviz, and their registration with open_clip.

A bundled model is a folder in open_clip's hub format (``open_clip_config.json`` holding
``model_cfg`` and ``preprocess_cfg``, plus ``open_clip_model.safetensors``). Registering its
``model_cfg`` under the model's name lets ``open_clip.create_model_and_transforms(name,
pretrained=<file>)`` and ``open_clip.get_tokenizer(name)`` work exactly as for a built-in model
(an unregistered name would silently get a default 77-token tokenizer).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["BUNDLED", "bundled_names", "bundled_files", "register"]

WEIGHTS_DIR = Path(__file__).parent / "weights"
CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"

# name -> folder; plain data, like open_clip's pretrained registry
BUNDLED: dict[str, Path] = {
    "clipviz-shapes": WEIGHTS_DIR / "clipviz-shapes",
    "clipviz-shapes-vit": WEIGHTS_DIR / "clipviz-shapes-vit",  # docs/model_card_vit.md
}


def bundled_names() -> list[str]:
    """Names of the models that ship with clipviz (they work offline)."""
    return list(BUNDLED)


def bundled_files(name: str) -> tuple[Path, Path]:
    """``(config_json, weights_safetensors)`` of a bundled model, checked to exist."""
    folder = BUNDLED[name]
    config, weights = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    missing = [str(p) for p in (config, weights) if not p.is_file()]
    if missing:
        from clipviz.models._errors import WeightsUnavailableError

        raise WeightsUnavailableError(
            f"the bundled model {name!r} is incomplete: missing {missing}. Reinstall clipviz "
            "(pip install --force-reinstall clipviz) or, in a source checkout, train it with "
            "`python -m clipviz.train`."
        )
    return config, weights


def read_config(config_path: str | Path) -> dict[str, Any]:
    """Read a hub-format ``open_clip_config.json`` ({"model_cfg": ..., "preprocess_cfg": ...})."""
    with open(config_path, encoding="utf-8") as f:
        cfg = json.load(f)
    if not isinstance(cfg, dict) or "model_cfg" not in cfg:
        raise ValueError(f"{config_path} is not an open_clip hub config (no 'model_cfg' key)")
    return cfg


def register(name: str, config_path: str | Path) -> dict[str, Any]:
    """Register the ``model_cfg`` of a hub-format config with open_clip under ``name``.

    Returns the whole config (``model_cfg`` and ``preprocess_cfg``). Idempotent.
    """
    import open_clip

    cfg = read_config(config_path)
    if open_clip.get_model_config(name) != cfg["model_cfg"]:
        # open_clip registers configs from files named <name>.json; it keeps them in memory
        # after the rescan, so the temporary file can go.
        with tempfile.TemporaryDirectory(prefix="clipviz-cfg-") as tmp:
            path = Path(tmp) / f"{name}.json"
            path.write_text(json.dumps(cfg["model_cfg"]), encoding="utf-8")
            open_clip.add_model_config(path)
    return cfg

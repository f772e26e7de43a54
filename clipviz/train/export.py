"""Write a trained model in the bundled open_clip folder format (config JSON + fp16 safetensors)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from clipviz.train.config import MODEL_CFG, MODEL_NAME, PREPROCESS_CFG

CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"


def export(
    model: Any,
    folder: str | os.PathLike,
    *,
    meta: dict[str, Any] | None = None,
    model_cfg: dict[str, Any] | None = None,
    name: str = MODEL_NAME,
) -> Path:
    """Save ``model`` so that ``open_clip.create_model_and_transforms("local-dir:<folder>")`` loads it.

    Parameters
    ----------
    model : open_clip.CLIP
        A model built from ``model_cfg``.
    folder : path
        Created if missing; ``open_clip_config.json`` and ``open_clip_model.safetensors`` are
        overwritten (each written to a temp file, then renamed).
    meta : dict, optional
        Provenance (recipe, steps, accuracies) stored under the JSON's ``"clipviz"`` key; open_clip
        reads only ``model_cfg`` and ``preprocess_cfg``.
    model_cfg : dict, optional
        The architecture ``model`` was built from (default: the ResNet model's ``MODEL_CFG``).
    name : str
        The model's name, stored in the config and the weights' metadata.

    Returns
    -------
    Path
        The folder.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").half().contiguous() for k, v in model.state_dict().items()}
    # BatchNorm's step counter is an integer buffer: keep it integer.
    for k, v in model.state_dict().items():
        if not v.is_floating_point():
            state[k] = v.detach().to("cpu").contiguous()
    config = {
        "model_cfg": model_cfg or MODEL_CFG,
        "preprocess_cfg": PREPROCESS_CFG,
        "model_name": name,
        "clipviz": meta or {},
    }
    tmp = folder / (WEIGHTS_FILE + ".tmp")
    save_file(state, str(tmp), metadata={"format": "pt", "model_name": name})
    os.chmod(tmp, 0o644)  # safetensors writes owner-only files; the package must be readable
    os.replace(tmp, folder / WEIGHTS_FILE)
    tmp = folder / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    os.replace(tmp, folder / CONFIG_FILE)
    return folder


def load_exported(folder: str | os.PathLike, device: str = "cpu") -> tuple[Any, Any, Any]:
    """Load an exported folder through open_clip: ``(model, preprocess, tokenizer)``."""
    import open_clip

    name = f"local-dir:{Path(folder).resolve()}"
    model, _, preprocess = open_clip.create_model_and_transforms(name, device=device)
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(name)

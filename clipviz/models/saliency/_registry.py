"""The saliency methods by name, which towers each supports, and the measured default per tower."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Method", "register", "get_method", "list_methods", "AUTO"]

# (model wrapper, pixels (B, 3, S, S), targets (B, P, D) unit text vectors) -> (B, P, s, s) >= 0
MapFn = Callable[[Any, Any, Any], np.ndarray]

# Measured by benchmarks/saliency_quality.py on the bundled models (pointing game and mass in
# mask, fresh shapes images; see benchmarks/results/saliency_quality.json). ResNet:
# layercam-fused beats layercam, gradcam, grad-x-input, occlusion and the centre prior. ViT
# (clipviz-shapes-vit): chefer-rollout beats chefer, rollout, grad-eclip, grad-x-input,
# occlusion and the centre prior. Both fused methods' constants were tuned on other seeds
# (benchmarks/saliency_tuning.py). Change only with a new measurement.
AUTO = {"resnet": "layercam-fused", "vit": "chefer-rollout"}


@dataclass(frozen=True)
class Method:
    """One saliency method: its name, the towers it supports and what it is."""

    name: str
    towers: tuple[str, ...]
    fn: MapFn
    summary: str
    reference: str


_METHODS: dict[str, Method] = {}


def register(name: str, towers: tuple[str, ...], summary: str, reference: str):
    """Decorator: add a map function to the registry under ``name``."""

    def wrap(fn: MapFn) -> MapFn:
        _METHODS[name] = Method(name, towers, fn, summary, reference)
        return fn

    return wrap


def _load_all() -> None:
    # importing the method modules runs their @register lines
    from clipviz.models.saliency import (  # noqa: F401
        attention_relevancy,
        grad_eclip,
        grad_x_input,
        gradcam,
        layercam_fused,
        occlusion,
    )


def list_methods(tower: str | None = None) -> list[str]:
    """Names of the registered methods, optionally only those supporting ``tower``."""
    _load_all()
    return [m.name for m in _METHODS.values() if tower is None or tower in m.towers]


def get_method(name: str, tower: str) -> Method:
    """The method called ``name`` (``"auto"``: the measured best for ``tower``)."""
    _load_all()
    if name == "auto":
        name = AUTO[tower]
    method = _METHODS.get(name)
    if method is None:
        raise ValueError(
            f"unknown saliency method {name!r}; choose 'auto' or one of {list_methods()}"
        )
    if tower not in method.towers:
        raise ValueError(
            f"saliency method {name!r} supports {list(method.towers)} towers, not this "
            f"model's {tower!r} tower; for it choose one of {list_methods(tower)}"
        )
    return method

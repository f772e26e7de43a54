"""Shared fixtures. Tests run offline and use the bundled model for real forward passes."""

from __future__ import annotations

import os

# Fail at once instead of waiting on a hub that cannot be reached.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def shapes_model():
    """The bundled clipviz-shapes model on the CPU (loaded once per test session)."""
    import clipviz.models

    return clipviz.models.load_model("clipviz-shapes", device="cpu")

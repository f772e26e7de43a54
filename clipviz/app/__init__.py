"""The app layer: the Workbench that composes the views and owns the shared state."""

from __future__ import annotations

from clipviz.app.workbench import Workbench

__all__ = ["Workbench"]

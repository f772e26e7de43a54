"""Sample data: the synthetic shapes generator (and, from H2, bundled real photos)."""

from __future__ import annotations

from clipviz.datasets.photos import photos
from clipviz.datasets.shapes import (
    COLOURS,
    HELD_OUT,
    SHAPES,
    SIZES,
    ShapeGeometry,
    ShapesData,
    shapes,
    shapes_array,
)

__all__ = [
    "COLOURS",
    "HELD_OUT",
    "SHAPES",
    "SIZES",
    "ShapeGeometry",
    "ShapesData",
    "photos",
    "shapes",
    "shapes_array",
]

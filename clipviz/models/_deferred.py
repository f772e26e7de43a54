"""DeferredClipModel: a ClipModel whose torch model is built on first use.

``load_model`` returns one when a manifest (``_manifest``) says what this exact model (same
weights file, config, precision and library versions) is: its key, dimension and logit scale
are known without importing torch or open_clip. A reopened notebook whose image and prompt
vectors are all in the disk cache then never builds the model; the first ``encode_texts``,
``encode_images``, ``preprocess`` or ``torch_model`` builds it (a few seconds), and checks that
it is the model the manifest described.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from clipviz.models import _manifest
from clipviz.models._clip_model import ClipModel
from clipviz.models._errors import ModelLoadError

__all__ = ["DeferredClipModel", "manifest_of"]


def manifest_of(model: ClipModel) -> _manifest.Manifest:
    """The facts a deferred model of ``model`` needs, read from the built model."""
    return _manifest.Manifest(model.info, model.image_size, model.context_length, model.tower)


class DeferredClipModel(ClipModel):
    """A :class:`ClipModel` built on first use (see the module docstring).

    Everything ``ClipModel`` offers works; ``info``, ``key``, ``dim``, ``logit_scale``,
    ``image_size`` and ``tower`` are answered without building. ``loaded`` says whether the
    torch model exists yet.
    """

    def __init__(
        self,
        manifest: _manifest.Manifest,
        build: Callable[[], ClipModel],
        *,
        manifest_key: str,
        name: str,
        pretrained: str | None,
        precision: str,
        device: str,
    ) -> None:
        # ClipModel.__init__ is not called: it needs the built model
        self.info = manifest.info
        self.name, self.pretrained, self.precision = name, pretrained, precision
        self.text_batch_size = 512
        self._manifest, self._manifest_key = manifest, manifest_key
        self._build, self._device_spec = build, device
        self._real: ClipModel | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._real is not None

    def load(self) -> ClipModel:
        """Build the torch model now (once; later calls return it)."""
        with self._lock:
            if self._real is None:
                real = self._build()
                if not _same(manifest_of(real), self._manifest):
                    _manifest.forget(self._manifest_key)
                    raise ModelLoadError(
                        f"the model built for {self.name!r} is not the one its saved manifest "
                        f"described ({manifest_of(real)} != {self._manifest}); the manifest was "
                        "removed: load the model again"
                    )
                self._real = real
        return self._real

    # what only the built model has
    torch_model = property(lambda self: self.load().torch_model)
    preprocess = property(lambda self: self.load().preprocess)
    tokenizer = property(lambda self: self.load().tokenizer)
    device = property(lambda self: self.load().device)
    context_length = property(lambda self: self.load().context_length)
    _input_dtype = property(lambda self: self.load()._input_dtype)

    @property
    def image_size(self) -> tuple[int, int]:
        return self._manifest.image_size

    @property
    def tower(self) -> tuple[str, bool]:
        return self._manifest.tower

    def __repr__(self) -> str:
        if self._real is not None:
            return repr(self._real)
        tag = f", pretrained={self.pretrained!r}" if self.pretrained else ""
        return (
            f"ClipModel({self.name!r}{tag}, dim={self.dim}, device={self._device_spec!r}, "
            f"precision={self.precision!r}, key={self.key[:12]}..., not built yet)"
        )


def _same(built: _manifest.Manifest, saved: _manifest.Manifest) -> bool:
    """Equal facts; the logit scale within float rounding (exp() on a GPU may differ by an ulp)."""
    a, b = built.info, saved.info
    scale_ok = abs(a.logit_scale - b.logit_scale) <= 1e-6 * max(1.0, abs(b.logit_scale))
    same_info = (a.key, a.name, a.dim, a.scoring) == (b.key, b.name, b.dim, b.scoring)
    bias_ok = (a.logit_bias is None) == (b.logit_bias is None) and (
        a.logit_bias is None
        or abs(a.logit_bias - b.logit_bias) <= 1e-6 * max(1.0, abs(b.logit_bias))
    )
    rest = (built.image_size, built.context_length, built.tower)
    return (
        scale_ok
        and same_info
        and bias_ok
        and rest == (saved.image_size, saved.context_length, saved.tower)
    )

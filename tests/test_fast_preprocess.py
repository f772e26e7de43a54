"""The fast standard preprocess gives open_clip's values, and is used only where it applies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

import clipviz.datasets
from clipviz.engine import embed_images
from clipviz.engine._fast_preprocess import recognise

# (width, height): photo-like, portrait, odd, square, at the input size, 50:1, smaller than
# the input (upscaled), very wide and very tall
SIZES = [(640, 480), (480, 640), (97, 203), (256, 256), (64, 64), (300, 65), (33, 20),
         (1000, 999), (2000, 41), (41, 2000)]  # fmt: skip


@pytest.fixture(scope="module")
def photos():
    s = clipviz.datasets.photos(("skimage",))  # real photographs, several sizes and shapes
    return [s.load(i) for i in range(len(s))]


def _max_diff(transform, images):
    fast = recognise(transform)
    assert fast is not None
    slow = torch.stack([transform(im) for im in images])
    quick = fast.to_batch([fast.pixels(im) for im in images])
    assert quick.shape == slow.shape and quick.dtype == slow.dtype
    return float((quick - slow).abs().max())


def test_bundled_model_transform_matches_on_photos_of_many_shapes(shapes_model, photos):
    assert _max_diff(shapes_model.preprocess, photos) < 1e-6
    for w, h in SIZES:
        resized = [im.resize((w, h), Image.BICUBIC) for im in photos[:3]]
        assert _max_diff(shapes_model.preprocess, resized) < 1e-6, (w, h)


@pytest.mark.parametrize(("size", "mode"), [(224, "shortest"), (96, None)])
def test_open_clip_eval_transforms_match(photos, size, mode):
    import open_clip

    transform = open_clip.image_transform(size, is_train=False, resize_mode=mode)  # 224: ViT-B-32
    assert _max_diff(transform, photos) < 1e-6
    wide = [photos[3].resize(s, Image.BICUBIC) for s in SIZES]
    for im in wide:
        assert _max_diff(transform, [im]) < 1e-6, im.size


def test_transforms_that_are_not_the_standard_compose_are_left_alone(shapes_model):
    import open_clip

    std = shapes_model.preprocess
    resize, crop, convert, to_tensor, norm = std.transforms
    others = [
        lambda im: std(im),  # not a Compose
        T.Compose([T.RandomResizedCrop(64), convert, to_tensor, norm]),  # training transform
        T.Compose([resize, T.CenterCrop(96), convert, to_tensor, norm]),  # needs padding
        T.Compose([resize, crop, T.Grayscale(3), to_tensor, norm]),  # an extra step
        T.Compose([resize, crop, type(convert)("L"), to_tensor, norm]),  # another mode
        T.Compose([T.Resize(64, max_size=80), crop, to_tensor, norm]),
        T.Compose([resize, crop, to_tensor, T.Normalize([0.5], [0.5])]),  # not 3 channels
        open_clip.image_transform(64, is_train=False, resize_mode="longest"),  # pads
        open_clip.image_transform((240, 320), is_train=False),  # keeps the ratio, not Resize
        open_clip.image_transform(64, is_train=False, resize_mode="squash"),  # no crop
    ]
    assert [recognise(t) for t in others] == [None] * len(others)
    assert recognise(None) is None


def test_embed_images_gives_the_same_vectors_with_and_without_the_fast_path(shapes_model, photos):
    class OwnTransform:
        """The same model, with a preprocess the fast path does not recognise."""

        def __init__(self, model):
            self.model, self.info = model, model.info
            self.device, self.image_size = model.device, model.image_size
            self.preprocess = lambda im: model.preprocess(im)

        def encode_images(self, pixels):
            return self.model.encode_images(pixels)

    images = photos + [im.resize((300, 65)) for im in photos]
    fast = embed_images(shapes_model, images, batch_size=4, cache=False, progress=False)
    own = embed_images(
        OwnTransform(shapes_model), images, batch_size=4, cache=False, progress=False
    )
    assert fast.ids == own.ids and len(fast) == len(images)
    np.testing.assert_array_equal(fast.vectors, own.vectors)

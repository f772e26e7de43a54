"""Real colour photos that scikit-image and scikit-learn ship, as a labelled ImageSet (offline).

Nothing is downloaded: the files are read from the installed packages. Each photo carries a
human label (usable as a zero-shot class name), its source, author and licence.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from clipviz.engine.imageset import ImageSet

__all__ = ["photos", "PHOTOS"]

# id -> (package, file, label, description, author/source, licence, url); plain data
PHOTOS: dict[str, tuple[str, str, str, str, str, str, str]] = {
    "astronaut": (
        "skimage", "astronaut.png", "astronaut", "Astronaut Eileen Collins",
        "NASA Great Images database", "public domain (no known copyright restrictions)",
        "https://flic.kr/p/r9qvLn",
    ),
    "chelsea": (
        "skimage", "chelsea.png", "cat", "Chelsea the cat",
        "Stefan van der Walt", "CC0", "https://scikit-image.org/docs/stable/api/skimage.data.html",
    ),
    "coffee": (
        "skimage", "coffee.png", "coffee cup", "Coffee cup (courtesy of Pikolo Espresso Bar)",
        "Rachel Michetti", "CC0", "https://scikit-image.org/docs/stable/api/skimage.data.html",
    ),
    "rocket": (
        "skimage", "rocket.jpg", "rocket", "Launch of DSCOVR on a Falcon 9",
        "SpaceX", "public domain",
        "https://www.flickr.com/photos/spacexphotos/16511594820/",
    ),
    "hubble_deep_field": (
        "skimage", "hubble_deep_field.jpg", "galaxies", "Hubble eXtreme Deep Field",
        "NASA / HubbleSite", "public domain",
        "http://hubblesite.org/newscenter/archive/releases/2012/37/image/a/",
    ),
    "immunohistochemistry": (
        "skimage", "ihc.png", "microscope slide",
        "Immunohistochemical staining of colonic glands",
        "Center for Microscopy And Molecular Imaging (CMMI)",
        "no known copyright restrictions",
        "https://scikit-image.org/docs/stable/api/skimage.data.html",
    ),
    "retina": (
        "skimage", "retina.jpg", "retina", "Fundus photograph of a normal left eye",
        "Mikael Häggström", "CC0 1.0",
        "https://commons.wikimedia.org/wiki/File:Fundus_photograph_of_normal_left_eye.jpg",
    ),
    "china": (
        "sklearn", "china.jpg", "temple", "A temple in China",
        "danielbuechele (Flickr)", "CC BY 2.0",
        "https://www.flickr.com/photos/danielbuechele/6061409035/",
    ),
    "flower": (
        "sklearn", "flower.jpg", "flower", "A flower",
        "vultilion (Flickr)", "CC BY 2.0",
        "https://www.flickr.com/photos/vultilion/6056698931/",
    ),
}  # fmt: skip

_PACKAGES = {"skimage": "scikit-image", "sklearn": "scikit-learn"}


def photos(sources: Iterable[str] = ("skimage", "sklearn")) -> ImageSet:
    """The bundled real photos as an ImageSet (ids like ``"chelsea"``, labels like ``"cat"``).

    Parameters
    ----------
    sources : iterable of {"skimage", "sklearn"}
        Which packages' photos to include. scikit-image's seven need ``pip install
        "clipviz[photos]"``; scikit-learn's two (``china``, ``flower``) are always available.

    Returns
    -------
    ImageSet
        ``metadata`` holds ``description``, ``author``, ``licence``, ``url`` and ``package`` per
        photo (see ``.to_pandas()``). Credit the authors of CC BY photos when you publish them.
    """
    wanted = list(sources)
    unknown = [s for s in wanted if s not in _PACKAGES]
    if unknown or not wanted:
        raise ValueError(f"sources must be a non-empty subset of {list(_PACKAGES)}, got {wanted}")
    folders = {pkg: _data_dir(pkg) for pkg in wanted}
    paths, ids, labels, meta = [], [], [], []
    for pid, (pkg, file, label, desc, author, licence, url) in PHOTOS.items():
        if pkg not in folders:
            continue
        path = os.path.join(folders[pkg], file)
        if not os.path.isfile(path):
            continue  # a trimmed install; the rest still works
        paths.append(path)
        ids.append(pid)
        labels.append(label)
        meta.append(
            {"description": desc, "author": author, "licence": licence, "url": url, "package": pkg}
        )
    if not paths:
        raise FileNotFoundError(f"none of the sample photos of {wanted} were found on disk")
    return ImageSet(paths, ids, labels, metadata=meta)


def _data_dir(pkg: str) -> str:
    if pkg == "skimage":
        try:
            import skimage.data
        except ImportError as err:
            raise ImportError(
                "clipviz.datasets.photos() needs scikit-image for 7 of its photos: "
                'pip install "clipviz[photos]" (or use photos(sources=["sklearn"]) for the two '
                "scikit-learn photos)"
            ) from err
        # the files ship inside the package; scikit-image >= 0.26 points data_dir at a download
        # cache instead, where they are absent on an offline machine
        shipped = os.path.dirname(skimage.data.__file__)
        if os.path.isfile(os.path.join(shipped, "astronaut.png")):
            return shipped
        return str(skimage.data.data_dir)
    import sklearn.datasets

    return os.path.join(os.path.dirname(sklearn.datasets.__file__), "images")

"""ImageSet constructors and safe decoding of every awkward kind of image file."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clipviz.engine import ImageSet, ImageSkipped


def _save(img: Image.Image, path, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def _two_tone(w=20, h=10, mode="RGB"):
    """Left half red, right half blue: tells orientation apart."""
    img = Image.new(mode, (w, h), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, w // 2, h))
    return img


def _load_file(path) -> Image.Image:
    return ImageSet.from_paths([path]).load(0)


# ---- decoding: conversions ------------------------------------------------------------------
def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display needs a 90 degree clockwise turn
    p = _save(_two_tone(), tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    img = _load_file(p)
    assert img.size == (10, 20)
    top, bottom = np.asarray(img)[2, 5], np.asarray(img)[17, 5]
    assert top[0] > 200 and top[2] < 60  # red went to the top
    assert bottom[2] > 200 and bottom[0] < 60


@pytest.mark.parametrize(
    "make,ext,expected",
    [
        (lambda: Image.new("L", (8, 8), 77), "png", (77, 77, 77)),
        (lambda: Image.new("1", (8, 8), 1), "png", (255, 255, 255)),
        (lambda: _two_tone().convert("P"), "png", (255, 0, 0)),
        (lambda: Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "jpg", (255, 0, 0)),
        (lambda: Image.new("RGBA", (8, 8), (255, 0, 0, 0)), "png", (255, 255, 255)),
        (lambda: Image.new("RGBA", (8, 8), (255, 0, 0, 255)), "png", (255, 0, 0)),
        (lambda: Image.new("LA", (8, 8), (0, 0)), "png", (255, 255, 255)),
        (lambda: Image.new("I;16", (8, 8), 65535), "png", (255, 255, 255)),
        (lambda: Image.new("I;16", (8, 8), 257 * 100), "png", (100, 100, 100)),
        (lambda: Image.new("I", (8, 8), 30000), "tif", (117, 117, 117)),
        (lambda: Image.new("F", (8, 8), 0.5), "tif", (128, 128, 128)),
    ],
    ids=["L", "1bit", "P", "CMYK", "RGBA-clear", "RGBA-opaque", "LA", "I16-max", "I16", "I32", "F"],
)
def test_modes_become_8bit_rgb(tmp_path, make, ext, expected):
    p = _save(make(), tmp_path / f"x.{ext}")
    img = _load_file(p)
    assert img.mode == "RGB"
    got = np.asarray(img)[0, 0].astype(int)
    assert np.abs(got - np.array(expected)).max() <= 3, (got, expected)


def test_palette_with_transparency_composites_on_white(tmp_path):
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.info["transparency"] = 0
    p = _save(img, tmp_path / "t.png", transparency=0)
    assert np.asarray(_load_file(p))[0, 0].tolist() == [255, 255, 255]


def test_pil_inputs_are_converted_too():
    s = ImageSet.from_pil([Image.new("RGBA", (4, 4), (0, 255, 0, 0)), Image.new("L", (4, 4), 9)])
    assert np.asarray(s.load(0))[0, 0].tolist() == [255, 255, 255]
    assert s.load(1).mode == "RGB"


# ---- decoding: bad inputs -----------------------------------------------------------------
def _jpeg_bytes(size=(64, 64)):
    buf = io.BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.mark.parametrize(
    "content,reason",
    [
        (b"this is not an image\n", "not an image"),
        (b"", "empty"),
        (_jpeg_bytes()[:400], "truncated"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, ""),  # PNG signature, garbage after
    ],
    ids=["text", "empty", "truncated-jpeg", "broken-png"],
)
def test_bad_files_raise_imageskipped_with_reason(tmp_path, content, reason):
    p = tmp_path / "bad.jpg"
    p.write_bytes(content)
    with pytest.raises(ImageSkipped) as err:
        _load_file(p)
    assert reason in err.value.reason
    assert "bad.jpg" in err.value.reason  # names the offending file


def test_missing_file_and_directory_are_skipped(tmp_path):
    with pytest.raises(ImageSkipped, match="not found"):
        _load_file(tmp_path / "nope.png")
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ImageSkipped, match="directory"):
        _load_file(tmp_path / "d.png")


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    p = _save(Image.new("L", (100, 100)), tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6000)  # 10k pixels: over the limit (warning)
    with pytest.raises(ImageSkipped, match="decompression bomb"):
        _load_file(p)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # over twice the limit (PIL's error)
    with pytest.raises(ImageSkipped, match="decompression bomb"):
        _load_file(p)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20000)
    assert _load_file(p).size == (100, 100)


# ---- constructors -------------------------------------------------------------------------
@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    _save(Image.new("RGB", (8, 8), "red"), root / "cat" / "a.jpg")
    _save(Image.new("RGB", (8, 8), "red"), root / "cat" / "deep" / "b.PNG")
    _save(Image.new("RGB", (8, 8), "blue"), root / "dog" / "c.png")
    _save(Image.new("RGB", (8, 8), "blue"), root / "top.png")
    (root / "notes.txt").write_text("not an image")
    _save(Image.new("RGB", (8, 8)), root / ".hidden" / "h.png")
    return root


def test_from_folder_recursive_labels_from_first_subfolder(folder):
    s = ImageSet.from_folder(folder)
    assert s.ids == ["cat/a.jpg", "cat/deep/b.PNG", "dog/c.png", "top.png"]
    assert s.labels == ["cat", "cat", "dog", None]
    assert s.paths[0] == str(folder / "cat" / "a.jpg")
    assert s.load(2).getpixel((0, 0)) == (0, 0, 255)
    assert "4 images" in repr(s)


def test_from_folder_flat_has_no_labels_and_errors(tmp_path, folder):
    assert ImageSet.from_folder(folder / "dog").labels is None
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ImageSet.from_folder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        ImageSet.from_folder(tmp_path / "empty")
    with pytest.raises(NotADirectoryError, match="from_paths"):
        ImageSet.from_folder(folder / "top.png")


def test_from_paths_ids_relative_and_unique(folder):
    paths = [folder / "cat" / "a.jpg", folder / "dog" / "c.png", folder / "cat" / "a.jpg"]
    s = ImageSet.from_paths(paths, labels=["x", "y", 3])
    assert s.ids == ["cat/a.jpg", "dog/c.png", "cat/a.jpg#1"]
    assert s.labels == ["x", "y", "3"]
    with pytest.raises(ValueError, match="2 labels for 3 images"):
        ImageSet.from_paths(paths, labels=["x", "y"])
    with pytest.raises(TypeError, match="list of paths"):
        ImageSet.from_paths(str(folder))


def test_from_pil_ids_and_validation():
    imgs = [Image.new("RGB", (4, 4)) for _ in range(3)]
    s = ImageSet.from_pil(imgs)
    assert s.ids == ["0", "1", "2"] and s.labels is None and s.paths == [None] * 3
    with pytest.raises(ValueError, match=r"unique.*'a'"):
        ImageSet.from_pil(imgs, ids=["a", "b", "a"])
    with pytest.raises(TypeError, match="item 1 is a str"):
        ImageSet.from_pil([imgs[0], "x.png"])


def test_from_dataframe_columns(folder):
    df = pd.DataFrame({"file": [str(folder / "top.png")], "cls": ["t"], "label": [float("nan")]})
    s = ImageSet.from_dataframe(df, path="file", label="cls")
    assert s.labels == ["t"] and s.ids == ["top.png"]
    assert ImageSet.from_dataframe(df, path="file").labels == [None]  # NaN -> no label
    assert ImageSet.from_dataframe(df.drop(columns="label"), path="file").labels is None
    with pytest.raises(KeyError, match=r"\['path'\].*columns are \['file', 'cls', 'label'\]"):
        ImageSet.from_dataframe(df)
    with pytest.raises(KeyError, match="'species'"):
        ImageSet.from_dataframe(df, path="file", label="species")


def test_content_hash_follows_content_not_name(folder, tmp_path):
    a = folder / "cat" / "a.jpg"
    copy = tmp_path / "renamed.jpg"
    copy.write_bytes(a.read_bytes())
    s = ImageSet.from_paths([a, copy, folder / "dog" / "c.png"])
    h = [s.content_hash(i) for i in range(3)]
    assert h[0] == h[1] != h[2]
    assert s.load_with_hash(0)[0] == h[0]
    p = ImageSet.from_pil([Image.new("RGB", (4, 4)), Image.new("RGB", (4, 4), (0, 0, 1))])
    assert p.content_hash(0) != p.content_hash(1)


def test_subset_keeps_ids_and_labels(folder):
    s = ImageSet.from_folder(folder).subset([2, 0])
    assert s.ids == ["dog/c.png", "cat/a.jpg"] and s.labels == ["dog", "cat"]


def test_import_engine_does_not_import_torch():
    code = "import sys, clipviz.engine; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- the bad-input corpus (issue 8, items 9-11): tests/bad_inputs/engine ---------------------
def _corpus(tmp_path, monkeypatch):
    from bad_inputs.engine.make import TEST_MAX_FILE_BYTES, make_corpus

    import clipviz.engine._decode as decode

    monkeypatch.setattr(decode, "MAX_FILE_BYTES", TEST_MAX_FILE_BYTES, raising=False)
    return make_corpus(tmp_path / "corpus", [_two_tone(40, 30)])


def test_every_corpus_case_is_skipped_with_its_reason(tmp_path, monkeypatch):
    import tracemalloc

    expected = _corpus(tmp_path, monkeypatch)
    s = ImageSet.from_folder(tmp_path / "corpus")
    assert sorted(s.ids) == sorted(expected)  # the FIFO and the symlink are listed too
    tracemalloc.start()
    for i, name in enumerate(s.ids):
        if expected[name]:
            with pytest.raises(ImageSkipped) as err:
                s.load(i)
            assert err.value.kind == expected[name], (name, err.value.reason)
            assert name in err.value.reason
        else:
            assert s.load(i).size == (40, 30)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2**20  # no 4 GB read of /dev/zero, no 224,000,000-px strip


def test_a_large_16_bit_image_is_scaled_without_float64_copies():
    import tracemalloc

    from clipviz.engine._decode import to_rgb

    side = 2000
    arr = (np.arange(side * side, dtype=np.uint32) % 65536).astype(np.uint16).reshape(side, side)
    img = Image.fromarray(arr)
    assert img.mode == "I;16"
    tracemalloc.start()
    out = to_rgb(img)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out.mode == "RGB" and out.getpixel((1, 0)) == (0, 0, 0)
    assert out.getpixel((side - 1, 32)) == tuple(
        [round(((32 * side + side - 1) % 65536) / 257)] * 3
    )
    # the old path held float64 copies (~160 MB here); now ~20 MB: a copy, the output, a block
    assert peak < 4 * arr.nbytes, peak


def test_a_huge_png_strip_of_a_few_kilobytes_is_refused_not_a_memory_error(tmp_path):
    p = _save(Image.new("L", (1_000_000, 1)), tmp_path / "strip.png")
    assert p.stat().st_size < 5_000
    with pytest.raises(ImageSkipped, match="extreme aspect ratio 1000000 x 1"):
        _load_file(p)
    with pytest.raises(ImageSkipped, match="extreme aspect ratio"):
        ImageSet.from_pil([Image.new("L", (100_000, 1))]).load(0)


def test_jpeg_draft_keeps_at_least_the_requested_short_side(tmp_path):
    p = _save(Image.new("RGB", (640, 480), "red"), tmp_path / "big.jpg")
    s = ImageSet.from_paths([p])
    raw = s.read_raw(0)
    assert s.decode_raw(0, raw).size == (640, 480)
    assert s.decode_raw(0, raw, min_side=64).size == (160, 120)  # 1/4 scale: 120 >= 64
    assert s.decode_raw(0, raw, min_side=224).size == (320, 240)
    assert s.decode_raw(0, raw, min_side=300).size == (640, 480)


# ---- user tables and file names (item 14) ----------------------------------------------------
def test_from_dataframe_names_the_row_of_a_missing_or_empty_path():
    df = pd.DataFrame({"path": ["a.png", np.nan, "c.png"]}, index=[10, 11, 12])
    with pytest.raises(ValueError, match=r"row 11 has no path in column 'path'"):
        ImageSet.from_dataframe(df)
    df = pd.DataFrame({"path": ["a.png", "  "]})
    with pytest.raises(ValueError, match=r"row 1 has an empty path"):
        ImageSet.from_dataframe(df)
    with pytest.raises(TypeError, match=r"row 0 of column 'path' is a int"):
        ImageSet.from_dataframe(pd.DataFrame({"path": [3]}))


def test_non_utf8_file_and_folder_names_get_displayable_ids(tmp_path):
    folder = os.fsdecode(bytes(tmp_path) + b"/caf\xe9")  # Latin-1 folder name
    os.mkdir(folder)
    name = os.path.join(folder, os.fsdecode(b"\xff\xfe.png"))
    _two_tone().save(name)
    s = ImageSet.from_folder(tmp_path)
    (item,) = s.ids
    assert item == "caf\ufffd/\ufffd\ufffd.png" and s.labels == ["caf\ufffd"]
    item.encode("utf-8")  # would raise for a surrogate-escaped name
    assert s.paths == [name] and s.load(0).size == (20, 10)  # still read from the real path


def _pathlib_listing(root, exts):
    """from_folder's listing as it was written with pathlib (the reference order and names)."""
    from pathlib import Path

    root = Path(root).expanduser()
    rels = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel_dir = Path(dirpath).relative_to(root)
        rels += [
            rel_dir / n
            for n in filenames
            if not n.startswith(".") and os.path.splitext(n)[1].lower() in exts
        ]
    rels.sort()
    return [str(root / r) for r in rels], [r.as_posix() for r in rels]


def test_from_folder_lists_in_pathlib_order_with_the_same_paths(tmp_path, monkeypatch):
    # "a-c" sorts before "a/b" as a string, after it as path parts: the parts order is kept
    names = [
        "a/b/x.png", "a-c/y.PNG", "a/z.jpg", "a.png", "b/.hidden.png", ".dot/q.png",
        "b/noext", "b/t.txt", "b/ends.", "b/two.dots.webp", "B/upper.png", "b/ü.png",
    ]  # fmt: skip
    for name in names:
        path = tmp_path / "root" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    from clipviz.engine.imageset import IMAGE_EXTENSIONS

    for given in (str(tmp_path / "root"), str(tmp_path / "root") + "/"):
        got = ImageSet.from_folder(given)
        paths, ids = _pathlib_listing(given, IMAGE_EXTENSIONS)
        assert got.paths == paths and got.ids == ids
        assert ids[:3] == ["B/upper.png", "a/b/x.png", "a/z.jpg"]  # then a-c/y.PNG
        assert got.labels == [i.split("/")[0] if "/" in i else None for i in ids]
    monkeypatch.chdir(tmp_path / "root")
    here = ImageSet.from_folder(".")
    assert (
        here.paths == _pathlib_listing(".", IMAGE_EXTENSIONS)[0] and here.paths[0] == "B/upper.png"
    )

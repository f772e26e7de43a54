"""TextCache with a disk cache: prompt vectors of one model come back in a new session, exactly,
and never for another model, another precision, or a prompt the model truncated."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import clipviz.models as M
from clipviz.app.prompts import TextCache

TEXTS = ["a circle", "a red star", "a photo of a blue square"]


def test_a_new_session_reads_the_vectors_back_without_the_model(shapes_model, tmp_path):
    first = TextCache(shapes_model, cache=tmp_path)
    vectors = first.get(TEXTS)
    assert first.encoded == 3 and first.from_disk == 0

    class NoEncoder:  # a reopened workbench: the model must not be asked
        info = shapes_model.info

        def encode_texts(self, texts):
            raise AssertionError(f"encoded {texts} although they were cached")

    again = TextCache(NoEncoder(), cache=tmp_path)
    np.testing.assert_array_equal(again.get(TEXTS), vectors)  # float32, bit for bit
    assert again.encoded == 0 and again.from_disk == 3
    later = TextCache(shapes_model, cache=tmp_path)
    later.get(["a circle", "a new prompt"])  # only the new text is encoded
    assert later.encoded == 1 and later.from_disk == 1


def test_another_precision_never_gets_the_fp32_vectors(shapes_model, tmp_path):
    TextCache(shapes_model, cache=tmp_path).get(TEXTS)
    bf16 = M.load_model("clipviz-shapes", device="cpu", precision="bf16")
    cached = TextCache(bf16, cache=tmp_path)
    got = cached.get(TEXTS)
    assert cached.encoded == 3 and cached.from_disk == 0
    np.testing.assert_allclose(got, bf16.encode_texts(TEXTS), atol=1e-6)
    assert np.abs(got - shapes_model.encode_texts(TEXTS)).max() > 1e-4  # bf16 differs


def test_a_damaged_text_shard_is_encoded_again(shapes_model, tmp_path):
    want = TextCache(shapes_model, cache=tmp_path).get(TEXTS)
    (shard,) = (tmp_path / "texts" / "v1" / shapes_model.key).glob("*.npy")
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF  # one flipped byte in the last vector
    shard.write_bytes(bytes(data))
    again = TextCache(shapes_model, cache=tmp_path)
    with pytest.warns(UserWarning, match="damaged"):
        got = again.get(TEXTS)
    assert again.encoded == 3
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_a_truncated_prompt_is_not_stored_so_it_warns_every_session(shapes_model, tmp_path):
    long = "a " + "very " * 30 + "red circle"
    with pytest.warns(M.PromptTruncatedWarning):
        TextCache(shapes_model, cache=tmp_path).get([long, "a circle"])
    again = TextCache(shapes_model, cache=tmp_path)
    with pytest.warns(M.PromptTruncatedWarning):
        again.get([long, "a circle"])
    assert again.encoded == 2  # neither text of the warned batch was stored
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TextCache(shapes_model, cache=tmp_path).get(["a circle", "a square"])


def test_no_cache_means_this_session_only(shapes_model, tmp_path):
    TextCache(shapes_model).get(TEXTS)
    TextCache(shapes_model, cache=False).get(TEXTS)
    assert not (tmp_path / "texts").exists()
    again = TextCache(shapes_model, cache=tmp_path)
    again.get(TEXTS)
    assert again.encoded == 3

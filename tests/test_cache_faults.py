"""The embedding disk cache under faults: damaged shards, a lying header, non-unit rows, a shard
that cannot be read, and read-only cache folders. Nothing is served wrong or lost."""

from __future__ import annotations

import hashlib
import os
import subprocess

import numpy as np
import pytest
from cache_helpers import Counting, embed, shapes_folder

from clipviz.engine import EmbeddingCache


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return shapes_folder(tmp_path_factory.mktemp("imgs"))


# ---- damaged shards (issue 8, items 3 and 12) ---------------------------------------------
def _one_shard(model, folder, cache):
    first = embed(model, folder, cache, batch_size=24)
    store = EmbeddingCache(cache, model.key, model.dim)
    (shard,) = store.dir.glob("*.npy")
    return first, store, shard


def _payload(shard):
    """(header length, records) of a shard as written."""
    records = np.load(shard, allow_pickle=False)
    return shard.stat().st_size - records.nbytes, records


def _rewrite(shard, records, start):
    head = shard.read_bytes()[:start]
    shard.write_bytes(head + records.tobytes())


def _damage_random_rows(records, rng):
    records["vector"][3] = rng.standard_normal(records["vector"].shape[1]).astype(np.float16)
    return "random"


def _damage_nan_row(records, rng):
    records["vector"][5] = np.nan
    return "nan"


def _damage_zero_row(records, rng):
    records["vector"][7] = 0
    return "zero"


def _damage_swapped_rows(records, rng):
    records["vector"][[0, 1]] = records["vector"][[1, 0]]
    return "swap"


@pytest.mark.parametrize(
    "damage",
    [_damage_random_rows, _damage_nan_row, _damage_zero_row, _damage_swapped_rows, "bit"],
)
def test_a_damaged_payload_is_detected_and_re_embedded(shapes_model, folder, tmp_path, damage):
    first, store, shard = _one_shard(shapes_model, folder, tmp_path)
    start, records = _payload(shard)
    if damage == "bit":
        data = bytearray(shard.read_bytes())
        data[start + 40 + 5] ^= 0x01  # one bit of row 0's vector
        shard.write_bytes(bytes(data))
    else:
        damage(records, np.random.default_rng(0))
        _rewrite(shard, records, start)
    m = Counting(shapes_model)
    with pytest.warns(UserWarning, match="damaged"):
        again = embed(m, folder, tmp_path, batch_size=24)
    assert m.encoded == 24  # the whole shard was dropped and its images embedded again
    np.testing.assert_array_equal(again.vectors, first.vectors)
    assert np.isfinite(again.vectors).all()
    assert (shard.parent / f".corrupt-{shard.name}").exists()  # set aside for inspection
    # the re-embedded batch is the same content, so it lands under the same (checksum) name
    assert hashlib.sha256(shard.read_bytes()).hexdigest() == shard.stem


def test_a_header_declaring_10_10_rows_costs_nothing(shapes_model, folder, tmp_path):
    first, store, shard = _one_shard(shapes_model, folder, tmp_path)
    text = shard.read_bytes()
    header = text[:128].replace(b"(24,)", b"(10000000000,)".ljust(5))
    lie = shard.with_name("f" * 64 + ".npy")
    lie.write_bytes(header + text[128:])  # same length: header and payload, a lying shape
    m = Counting(shapes_model)
    with pytest.warns(UserWarning, match="declares 10000000000 records"):
        again = embed(m, folder, tmp_path, batch_size=24)
    assert m.encoded == 0  # the good shard still serves every image
    np.testing.assert_array_equal(again.vectors, first.vectors)


def test_unit_rows_only_even_with_a_valid_checksum(shapes_model, folder, tmp_path):
    """A shard that is intact but holds a NaN row (e.g. broken weights) serves no NaN."""
    store = EmbeddingCache(tmp_path, shapes_model.key, shapes_model.dim)
    good = np.eye(shapes_model.dim, dtype=np.float16)[:2]
    bad = np.full((1, shapes_model.dim), np.nan, np.float16)
    store.write([b"a" * 32, b"b" * 32, b"c" * 32], np.concatenate([good, bad]))
    with pytest.warns(UserWarning, match="not finite unit vectors"):
        index = store.load()
    assert sorted(index) == [b"a" * 32, b"b" * 32]


def test_compaction_never_deletes_a_shard_it_could_not_read(
    shapes_model, folder, tmp_path, monkeypatch
):
    import builtins
    import errno

    import clipviz.engine.cache as cache_mod

    monkeypatch.setattr(cache_mod, "_COMPACT_OVER", 3)
    embed(shapes_model, folder, tmp_path, batch_size=4)  # 6 shards, not yet compacted
    store = EmbeddingCache(tmp_path, shapes_model.key, shapes_model.dim)
    shards = sorted(store.dir.glob("*.npy"))
    assert len(shards) == 6
    flaky = str(shards[2])
    real_open = builtins.open

    def open_with_eio(file, *args, **kwargs):  # a transient I/O error on one shard
        if str(file) == flaky:
            raise OSError(errno.EIO, "Input/output error", flaky)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_with_eio)
    with pytest.warns(UserWarning, match="unreadable cache shard"):
        index = store.load()
    monkeypatch.setattr(builtins, "open", real_open)
    assert len(index) == 20 and os.path.exists(flaky)  # merged the 5 it read, kept the 6th
    assert len(list(store.dir.glob("*.npy"))) == 2
    assert len(store.load()) == 24  # read once the error is gone: nothing was lost


# ---- read-only cache (item 13) ---------------------------------------------------------------
@pytest.fixture
def make_readonly():
    """Make a folder unwritable: chmod for a normal user, ``chattr +i`` for root."""
    frozen = []

    def freeze(path):
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o555)
        if _writable(path):
            if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
                pytest.skip("cannot make a folder read-only here (root without chattr)")
            frozen.append(path)
        return path

    yield freeze
    for path in frozen:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def _writable(path) -> bool:
    probe = path / ".probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True


def test_empty_read_only_cache_warns_once_and_embeds(shapes_model, folder, tmp_path, make_readonly):
    cache = make_readonly(tmp_path / "ro")
    with pytest.warns(UserWarning, match="cannot write to the embedding cache") as record:
        emb = embed(shapes_model, folder, cache, batch_size=4)
    assert len(emb) == 24 and emb.counts.encoded == 24
    assert sum("cannot write" in str(w.message) for w in record) == 1
    np.testing.assert_allclose(emb.vectors, embed(shapes_model, folder, False).vectors, atol=2e-3)


def test_full_read_only_cache_is_read_without_compacting(
    shapes_model, folder, tmp_path, make_readonly, monkeypatch
):
    import clipviz.engine.cache as cache_mod

    monkeypatch.setattr(cache_mod, "_COMPACT_OVER", 1000)
    first = embed(shapes_model, folder, tmp_path, batch_size=2)  # 12 shards
    store = EmbeddingCache(tmp_path, shapes_model.key, shapes_model.dim)
    make_readonly(store.dir)
    monkeypatch.setattr(cache_mod, "_COMPACT_OVER", 3)
    m = Counting(shapes_model)
    with pytest.warns(UserWarning, match="cannot write to the embedding cache"):
        again = embed(m, folder, tmp_path)
    assert m.encoded == 0 and again.counts.from_cache == 24
    np.testing.assert_array_equal(again.vectors, first.vectors)
    assert len(list(store.dir.glob("*.npy"))) == 12

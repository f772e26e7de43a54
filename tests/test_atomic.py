"""clipviz._atomic.write_atomic: old file or whole new file, never a half-written one or a
leftover temporary, and the permissions of a plain open."""

from __future__ import annotations

import os
import threading

import pytest

from clipviz._atomic import write_atomic


def test_bytes_str_and_a_writer_function(tmp_path):
    assert write_atomic(tmp_path / "a" / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert (write_atomic(tmp_path / "t.txt", "é").read_bytes()) == "é".encode()
    write_atomic(tmp_path / "f.bin", lambda f: f.write(b"xyz"))
    assert (tmp_path / "f.bin").read_bytes() == b"xyz"


def test_a_failing_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "data.json"
    write_atomic(target, "old")

    def half_then_fail(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(target, half_then_fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.json"]


def test_concurrent_writers_never_share_a_temporary_file(tmp_path):
    """export_metrics used one fixed 'NAME.tmp': two writers interleaved into one file."""
    target = tmp_path / "metrics.json"
    payloads = [bytes([65 + k]) * 200_000 for k in range(8)]
    threads = [threading.Thread(target=write_atomic, args=(target, p)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert target.read_bytes() in payloads  # one writer's whole content, not a mixture
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_permissions_follow_the_umask(tmp_path):
    umask = os.umask(0o027)
    try:
        path = write_atomic(tmp_path / "x", b"1")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o640

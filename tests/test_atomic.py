"""One atomic-write helper (issue 23): the old file or the new, never half; no leftovers."""

from __future__ import annotations

import threading

import pytest

from fakescan.atomic import atomic_path, write_text


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    dest = tmp_path / "config.json"
    write_text(dest, "old")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert dest.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_two_writers_of_one_file_never_share_a_temporary(tmp_path):
    dest = tmp_path / "autotune.json"
    seen: list[str] = []
    barrier = threading.Barrier(2)

    def writer(text: str) -> None:
        with atomic_path(dest) as tmp:
            seen.append(tmp.name)
            barrier.wait()  # both inside at once
            tmp.write_text(text)

    threads = [threading.Thread(target=writer, args=(t,)) for t in ("a" * 1000, "b" * 1000)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 2 and dest.read_text() in ("a" * 1000, "b" * 1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["autotune.json"]


def test_the_file_gets_the_mode_a_plain_write_would(tmp_path):
    import os

    write_text(tmp_path / "plain.txt", "x")
    (tmp_path / "ref.txt").write_text("x")
    assert os.stat(tmp_path / "plain.txt").st_mode == os.stat(tmp_path / "ref.txt").st_mode

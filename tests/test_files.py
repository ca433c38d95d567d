"""Files: atomic writes (a crash leaves the old file), JSON conversion, content digests."""

from __future__ import annotations

import json
import math
import os
import stat

import numpy as np
import pytest
import torch

from multiview.files import (
    FileFormatError,
    atomic_write,
    atomic_write_text,
    digest,
    read_json,
    read_results,
    to_jsonable,
    umask,
    write_json,
)


def test_atomic_write_creates_folders_and_replaces(tmp_path):
    path = tmp_path / "a" / "b" / "f.txt"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["f.txt"]  # no temporary file left


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")

    def fail(fh):
        fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_json_of_tensors_arrays_and_non_finite_numbers(tmp_path):
    obj = {
        "t": torch.tensor([[1.0, float("nan")]]),
        "a": np.arange(3),
        "s": np.float32(0.5),
        "b": np.bool_(True),
        "x": (math.inf, 1),
        2: "key",
    }
    assert to_jsonable(obj) == {
        "t": [[1.0, None]],
        "a": [0, 1, 2],
        "s": 0.5,
        "b": True,
        "x": [None, 1],
        "2": "key",
    }
    write_json(tmp_path / "r.json", obj)
    assert read_json(tmp_path / "r.json")["t"] == [[1.0, None]]
    assert (tmp_path / "r.json").read_text().endswith("\n")


def test_digest_is_stable_and_ignores_key_order():
    a = digest({"b": 1, "a": [1.5, "x"]})
    assert a == digest({"a": [1.5, "x"], "b": 1}) and len(a) == 16
    assert a != digest({"b": 2, "a": [1.5, "x"]})
    # the spelling checkpoints were keyed with: with and without spaces after separators
    text = json.dumps({"a": 1}, sort_keys=True)
    import hashlib

    assert digest({"a": 1}, compact=False) == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert digest({"a": 1}) != digest({"a": 1}, compact=False)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_written_files_get_the_ordinary_mode_of_new_files(tmp_path, mask):
    old = os.umask(mask)
    try:
        assert umask() == mask
        atomic_write_text(tmp_path / "f.txt", "x")
        (tmp_path / "plain.txt").write_text("x")  # what open() gives a new file
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "f.txt").stat().st_mode)
    assert mode == 0o666 & ~mask == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b'{"a": ', "is not valid JSON"),
        (b"\xff\xfe{}", "is not UTF-8 text"),
    ],
)
def test_read_json_names_the_file_it_cannot_read(tmp_path, content, message):
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(FileFormatError, match=message) as info:
        read_json(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"schema": 1}', "not a results.json of multiview \\(no 'config' table\\)"),
        ("[1, 2]", "holds a JSON list"),
        ('{"schema": 9, "config": {}}', "schema 9, newer than this version"),
        ('{"schema": "one", "config": {}}', "schema 'one'"),
        ("{", "is not valid JSON"),
    ],
)
def test_read_results_refuses_what_is_not_a_run(tmp_path, content, message):
    (tmp_path / "results.json").write_text(content)
    with pytest.raises(FileFormatError, match=message):
        read_results(tmp_path)


def test_read_results_of_a_folder_without_one_says_what_was_expected(tmp_path):
    with pytest.raises(FileFormatError, match="does not exist: expected a run folder"):
        read_results(tmp_path)
    (tmp_path / "results.json").write_text('{"schema": 1, "config": {"data": {}}}')
    assert read_results(tmp_path / "results.json")["config"] == {"data": {}}

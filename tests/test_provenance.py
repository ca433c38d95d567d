"""What a run records about its software and machine (``environment`` in results.json)."""

from __future__ import annotations

import subprocess
from importlib import metadata

import numpy
import pytest
import torch

from multiview import provenance
from multiview.provenance import host_environment, package_version, source_revision


def git(folder, *args):
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)


def test_the_environment_names_versions_threads_and_device():
    env = host_environment(torch.device("cpu"))
    assert env["multiview"] == package_version() == metadata.version("multiview")
    assert env["torch"] == torch.__version__ and env["numpy"] == numpy.__version__
    assert env["threads"] == torch.get_num_threads() and env["device"] == "cpu"
    assert "gpu" not in env and env["python"].count(".") == 2


def test_the_source_revision_of_a_checkout_and_its_dirty_flag(tmp_path):
    package = tmp_path / "repo" / "multiview"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    git(tmp_path / "repo", "init", "-q")
    git(tmp_path / "repo", "add", ".")
    git(tmp_path / "repo", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    head = subprocess.run(
        ["git", "-C", str(package), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert source_revision.__wrapped__(package) == {"commit": head, "dirty": False}
    (package / "new.py").write_text("")  # untracked files leave the checkout clean
    assert source_revision.__wrapped__(package)["dirty"] is False
    (package / "__init__.py").write_text("x = 1\n")
    assert source_revision.__wrapped__(package) == {"commit": head, "dirty": True}


def test_no_revision_outside_a_checkout_of_the_package(tmp_path):
    assert source_revision.__wrapped__(tmp_path) is None  # not in a repository
    nested = tmp_path / "repo" / "venv" / "site-packages" / "multiview"
    nested.mkdir(parents=True)
    git(tmp_path / "repo", "init", "-q")
    assert source_revision.__wrapped__(nested) is None  # an installed copy inside another repository


def test_this_checkout_is_recorded(monkeypatch):
    revision = source_revision()
    if revision is None:
        pytest.skip("multiview is not run from a git checkout here")
    assert len(revision["commit"]) == 40 and isinstance(revision["dirty"], bool)
    assert host_environment(torch.device("cpu"))["source"] == revision
    monkeypatch.setattr(provenance, "source_revision", lambda: None)
    assert "source" not in host_environment(torch.device("cpu"))

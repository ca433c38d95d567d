"""Device names: what may be given, and what it resolves to."""

from __future__ import annotations

import pytest
import torch

from multiview.device import check_device, resolve_device
from multiview.settings import ConfigError


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:1"])
def test_device_names(name):
    check_device("local.device", name)


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "cpu:0"])
def test_bad_device_names(name):
    with pytest.raises(ConfigError, match=f"local.device = '{name}': must be auto, cpu, cuda or cuda:N"):
        check_device("local.device", name)


def test_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="--device 'nonsense': use auto, cpu, cuda or cuda:N"):
        resolve_device("nonsense")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")

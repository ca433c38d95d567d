"""Shared test settings: deterministic, single-threaded where it matters, CPU only."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch
from torch.overrides import TorchFunctionMode

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def _tensors(values):
    for v in values:
        if isinstance(v, torch.Tensor):
            yield v
        elif isinstance(v, (tuple, list)):
            yield from _tensors(v)


class _OneDevice(TorchFunctionMode):
    """Refuses an operation whose tensors are on two devices, as CUDA does; the meta device lets
    some pass (a product of a meta and a CPU tensor, CPU values written into a meta tensor through
    an index, a meta index into CPU data, which gives unwritten memory). Allowed, as on CUDA: a
    0-dim CPU tensor anywhere, an index on the CPU, and moving or copying a tensor."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.to, torch.Tensor.copy_):
            checked = []
        elif func in (torch.Tensor.__getitem__, torch.Tensor.__setitem__):
            self_ = args[0]
            for index in _tensors([args[1]]):
                assert index.device in (self_.device, torch.device("cpu")), (
                    f"{index.device} index of {self_.device}"
                )
            checked = [self_, *args[2:]]
        else:
            checked = [*args, *kwargs.values()]
        devices = {t.device for t in _tensors(checked) if t.dim() > 0 or t.device.type != "cpu"}
        assert len(devices) <= 1, f"{getattr(func, '__name__', func)} on {sorted(map(str, devices))}"
        return func(*args, **kwargs)


@pytest.fixture
def one_device():
    """A context in which every operation must have its tensors on one device (:class:`_OneDevice`):
    with data on the meta device, a tensor the code makes on the CPU and forgets to move fails
    there as it would on a GPU."""
    return _OneDevice


def _assert_identical(got, expected, path: str = "result") -> None:
    """The same tensors (device, dtype, shape and every value, NaN where NaN) in the same structure."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(got, torch.Tensor), f"{path}: {type(got).__name__}, not a tensor"
        assert got.device == expected.device, f"{path}: on {got.device}, not {expected.device}"
        torch.testing.assert_close(got, expected, rtol=0, atol=0, equal_nan=True, msg=path)
    elif dataclasses.is_dataclass(expected) and not isinstance(expected, type):
        assert type(got) is type(expected), f"{path}: {type(got).__name__}"
        for f in dataclasses.fields(expected):
            _assert_identical(getattr(got, f.name), getattr(expected, f.name), f"{path}.{f.name}")
    elif isinstance(expected, dict):
        assert got.keys() == expected.keys(), f"{path}: keys {sorted(got)}"
        for key in expected:
            _assert_identical(got[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, (tuple, list)):
        assert type(got) is type(expected) and len(got) == len(expected), f"{path}: {got!r}"
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            _assert_identical(g, e, f"{path}[{i}]")
    else:
        assert got == expected, f"{path}: {got!r} != {expected!r}"


@pytest.fixture
def same_on_meta_default():
    """Run ``fn()`` twice, as usual and with PyTorch's default device set to ``meta``, and assert
    that both give the same tensors on the same (CPU) device; returns the result.

    This is what running on a GPU checks: the data are on one device and every tensor the code
    makes for them must be made there, not on the default device. Inside ``torch.device("meta")``
    a factory call without ``device=`` (or with ``device=None``) makes a meta tensor, which has a
    shape but no values: reading it raises, and so does mixing it with the CPU data, which the
    second run checks as CUDA does (:class:`_OneDevice`). ``fn`` should make its inputs outside
    (on the CPU) and only call the code under test. Fields named in ``ignore`` (a wall-clock
    time) are not compared."""

    def check(fn, ignore: tuple[str, ...] = ()):
        expected = fn()
        with torch.device("meta"), _OneDevice():
            got = fn()
        for name in ignore:
            expected = dataclasses.replace(expected, **{name: None})
            got = dataclasses.replace(got, **{name: None})
        _assert_identical(got, expected)
        return got

    return check

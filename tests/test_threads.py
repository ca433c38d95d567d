"""The thread policy: the cores not kept busy by other processes, idle threads that sleep."""

from __future__ import annotations

import pytest
import torch

from multiview import threads


@pytest.fixture()
def machine(monkeypatch):
    """A machine of ``cores`` cores with a 1-minute load average of ``load``."""

    def set_(cores: int, load: float) -> None:
        monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(cores)))
        monkeypatch.setattr(threads.os, "getloadavg", lambda: (load, load, load))

    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    return set_


@pytest.mark.parametrize(
    ("cores", "load", "expected"),
    [(2, 0.0, 2), (2, 0.4, 2), (2, 1.2, 1), (2, 5.0, 1), (16, 3.6, 12), (1, 0.0, 1), (8, 9.0, 1)],
)
def test_default_threads_leave_the_busy_cores_alone(machine, cores, load, expected):
    machine(cores, load)
    assert threads.default_threads() == expected
    assert threads.resolve_threads(0) == expected
    assert threads.resolve_threads(3) == 3  # an explicit count is kept


def test_a_slurm_allocation_is_the_jobs_own(machine, monkeypatch):
    machine(64, 40.0)  # other jobs on the node
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "4")
    assert threads.cpu_count() == 4 and threads.busy_cores() == 0
    assert threads.default_threads() == 4


def test_use_threads_sets_torch_and_lets_idle_threads_sleep(machine, monkeypatch):
    machine(4, 1.0)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    before = torch.get_num_threads()
    try:
        assert threads.use_threads(0) == 3 and torch.get_num_threads() == 3
        assert threads.os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
        assert threads.use_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_wait_policy_the_user_set_is_kept(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    threads.sleep_when_idle()
    assert threads.os.environ["OMP_WAIT_POLICY"] == "ACTIVE"

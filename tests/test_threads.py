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


@pytest.mark.parametrize(
    ("cores", "load", "elements", "expected"),
    [
        (2, 0.0, 2**20 - 1, 1),  # a step of under a million pairs: one thread
        (2, 0.0, 2**20, 2),
        (16, 0.0, 3 * 2**20 + 5, 4),  # one thread and one per million pairs
        (16, 0.0, 10**9, 16),  # never more than the free cores
        (16, 13.0, 10**9, 3),
        (2, 1.2, 2**22, 1),
        (2, 0.0, 0, 1),
    ],
)
def test_default_threads_follow_the_size_of_the_step(machine, cores, load, elements, expected):
    machine(cores, load)
    assert threads.default_threads(elements) == expected
    assert threads.resolve_threads(0, elements) == expected
    assert threads.resolve_threads(5, elements) == 5  # an explicit count is kept
    assert threads.default_threads(None) == max(1, cores - round(load))


def test_use_threads_with_the_size_of_the_step(machine, monkeypatch):
    machine(4, 0.0)
    before = torch.get_num_threads()
    try:
        assert threads.use_threads(0, 2**20 + 1) == 2 and torch.get_num_threads() == 2
        assert threads.use_threads(0) == 4 and torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(before)


def test_the_presets_ask_for_the_threads_their_steps_repay():
    from multiview.config import get_preset

    assert get_preset("default").step_elements() == 8 * 4 * 6 * 360 * 6 < 2**20  # one thread
    assert get_preset("paper").step_elements() == 10 * 10 * 4 * 500 * 16 > 2**21  # two and more
    assert get_preset("paper_kd").step_elements() == 4 * get_preset("paper").step_elements()


def test_the_block_pool_runs_torch_on_one_thread_per_worker():
    """``workers`` threads of their own, each with one torch thread, kept for the process; the
    caller's thread count (and the one new threads start with) is left as it was."""
    import threading

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        pool = threads.block_pool(2)
        assert threads.block_pool(2) is pool and threads.block_pool(3) is not pool
        assert torch.get_num_threads() == 3
        started = threading.Barrier(2)

        def inside(_: int) -> tuple[int, int]:
            started.wait(timeout=10)  # both tasks at once: two threads
            return threading.get_ident(), torch.get_num_threads()

        seen = list(pool.map(inside, range(2)))
        assert len({ident for ident, _ in seen}) == 2 and {n for _, n in seen} == {1}
        fresh = threading.Thread(target=lambda: seen.append((0, torch.get_num_threads())))
        fresh.start()
        fresh.join()
        assert seen[-1][1] == 3
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("cores", "load", "threads", "jobs", "elements", "expected"),
    [
        (2, 0.0, 0, 0, 12_800_000, (2, 1)),  # paper_kd: two processes of one thread
        (2, 0.0, 0, 0, 400_000, (2, 1)),  # default
        (2, 0.0, 0, 0, 23_000, (1, 1)),  # smoke: one process, one thread
        (2, 1.3, 0, 0, 12_800_000, (1, 1)),  # a core busy
        (16, 0.0, 0, 0, 12_800_000, (4, 4)),  # at most four processes, the threads shared out
        (16, 0.0, 0, 0, 2_500_000, (4, 3)),  # each as many as its step repays
        (16, 0.0, 0, 2, 12_800_000, (2, 8)),
        (2, 0.0, 1, 0, 12_800_000, (1, 1)),  # one thread in all: one process
        (2, 0.0, 3, 0, 100, (1, 3)),
        (8, 0.0, 6, 4, None, (4, 1)),
        (2, 0.0, 0, 3, 12_800_000, (3, 1)),  # asked for: more processes than cores
    ],
)
def test_jobs_share_the_threads(machine, cores, load, threads, jobs, elements, expected):
    machine(cores, load)
    assert threads_module_plan(threads, jobs, elements) == expected


def threads_module_plan(n_threads, jobs, elements):
    return threads.plan_jobs(n_threads, jobs, elements)

"""Which stages a protocol runs: the requested ones and their prerequisites, in protocol order.

Shared by the simulation protocol (:mod:`multiview.protocol`) and the CIFAR protocol
(:mod:`multiview.cifar.protocol`); each passes its own prerequisites and order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def resolve_stages(
    requested: Iterable[str], requires: Mapping[str, Sequence[str]], order: Sequence[str]
) -> list[str]:
    """The ``requested`` stages plus what they need (``requires``: stage → its prerequisites),
    listed in ``order``. An unknown stage raises :class:`ValueError` naming the choices."""
    wanted: set[str] = set()

    def add(name: str) -> None:
        if name not in requires:
            raise ValueError(f"unknown stage {name!r}; choose from {', '.join(order)}")
        wanted.add(name)
        for dep in requires[name]:
            add(dep)

    for name in requested:
        add(name)
    return [s for s in order if s in wanted]

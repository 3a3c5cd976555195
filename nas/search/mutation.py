"""Moves in architecture space shared by the searchers: mutation, crossover, genotypes, listing.

Every move goes through `Space.walk`, so a change that activates new decisions (say, a larger
repeat count) draws them with the given chooser, and values of decisions that become inactive are
dropped: a move always returns a valid architecture of the space.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from nas.space import Architecture, Space
from nas.space.walk import Decision, random_chooser, same_option

# Spaces up to this many architectures may be listed whole (SMBO scores every candidate).
MAX_LISTED = 50_000


def option_index(options: Sequence[Any], value: Any) -> int:
    """Return the index of `value` among `options` (strict match, as the walk does)."""
    for i, option in enumerate(options):
        if same_option(value, option):
            return i
    raise ValueError(f"{value!r} is not among {list(options)}")


def mutate(space: Space, arch: Architecture, rng: random.Random, n_changes: int = 1,
           decisions: Mapping[str, Sequence[Any]] | None = None) -> Architecture:
    """Return `arch` with `n_changes` active decisions set to another option (others redrawn).

    `decisions` is `space.decisions()`, passed by callers that have it already (it walks the space).
    """
    decisions = decisions if decisions is not None else space.decisions()
    labels = [label for label in arch if len(decisions.get(label, ())) > 1]
    if not labels:
        return arch
    changes = {}
    for label in rng.sample(labels, min(n_changes, len(labels))):
        options = decisions[label]
        current = option_index(options, arch[label])
        changes[label] = options[rng.choice([i for i in range(len(options)) if i != current])]
    return space.complete({**arch, **changes}, random_chooser(rng))


def random_unseen(space: Space, rng: random.Random, seen: set[str], tries: int = 200
                  ) -> Architecture:
    """Return a random architecture not in `seen` (a seen one only if `tries` draws all repeat)."""
    arch = space.sample(rng)
    for _ in range(tries - 1):
        if arch.id not in seen:
            break
        arch = space.sample(rng)
    return arch


def crossover(space: Space, a: Architecture, b: Architecture, rng: random.Random) -> Architecture:
    """Return a child taking each decision from `a` or `b` at random (uniform crossover)."""

    def choose(d: Decision) -> Any:
        have = [p[d.label] for p in (a, b) if d.label in p]
        return rng.choice(have) if have else d.options[rng.randrange(len(d.options))]

    return space.walk(choose)


def is_flat(space: Space) -> bool:
    """Return whether every decision is active in every architecture (a plain product space)."""
    return space.size() == math.prod(len(o) for o in space.decisions().values())


def genes_to_arch(space: Space, genes: Sequence[int], labels: Sequence[str]) -> Architecture:
    """Return the architecture whose decision labels[i] takes option genes[i] (inactive: unused)."""
    position = {label: i for i, label in enumerate(labels)}
    return space.walk(lambda d: d.options[int(genes[position[d.label]]) % len(d.options)])


def arch_to_genes(decisions: Mapping[str, Sequence[Any]], arch: Mapping[str, Any],
                  rng: random.Random) -> list[int]:
    """Return one gene per decision (`space.decisions()`); inactive decisions get a random gene."""
    genes = []
    for label, options in decisions.items():
        genes.append(option_index(options, arch[label]) if label in arch
                     else rng.randrange(len(options)))
    return genes


def listed(space: Space, plain: bool = False) -> Iterator[Mapping[str, Any]]:
    """Yield every architecture (as plain dicts if `plain`); a fast product when the space is flat."""
    if not is_flat(space):
        for arch in space.architectures():
            yield dict(arch) if plain else arch
        return
    decisions = space.decisions()
    for combo in itertools.product(*decisions.values()):
        values = dict(zip(decisions, combo, strict=True))
        yield values if plain else Architecture(values)

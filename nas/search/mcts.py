"""Monte Carlo tree search over the sequence of open decisions, as in DeepArchitect (Negrinho 2017).

A tree node is a prefix of decisions in walk order (`Space.next_decision`); its statistics are the
visits and summed rewards of every finished architecture that starts with that prefix, so identical
prefixes share statistics whichever ask produced them. The tree policy picks children by UCT on
rewards normalised online to [0, 1] (min and max seen so far); the first unvisited child met is
expanded and the architecture is finished by a rollout: at random, or the best of `rollouts`
random completions by a ridge surrogate (`nas.search.surrogate.RidgeSurrogate`). With
`binarize=True` a k-way decision is a path of yes/no splits of its option list (the paper's "MCTS
bi"), so options next to each other in the list share the statistics of the halves they fall in.

Unlike DeepArchitect, which backs a reward up the path the tree policy chose only (down to the
expanded node), `observe` adds it to every prefix of the told architecture's moves, the rollout's
included: a trial adds a whole branch, and trials the tree did not propose count too.

The tree is a function of the history and draws come from `step_rng`: restores are exact.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np

from nas.errors import SearchError
from nas.search.base import Observation, Searcher
from nas.search.mutation import option_index, random_unseen
from nas.search.surrogate import RidgeSurrogate
from nas.space import Architecture
from nas.space.walk import random_chooser, replay, walk

Move = tuple[str, int, int]  # (label, lo, hi): the options [lo, hi) of a decision still open
Key = tuple[Move, ...]


class MCTS(Searcher):
    """UCT over decision prefixes with random rollouts (optionally binarised choices)."""

    name = "mcts"
    resumable = True
    max_repeats = 20  # tree descents that end on a seen architecture before a random unseen one

    def configure(self, c: float = 0.5, binarize: bool = False, max_weight: float = 0.0,
                  rollout: str = "surrogate", rollouts: int = 32, **rest: Any) -> None:
        super().configure(**rest)
        c = float(c)
        if not math.isfinite(c) or c < 0:
            raise SearchError(f"mcts: c={c!r}; the UCT constant is a number >= 0 (e.g. 0.5)")
        if isinstance(binarize, str):
            binarize = binarize.lower() in ("1", "true", "yes")
        if not 0.0 <= float(max_weight) <= 1.0:
            raise SearchError(f"mcts: max_weight={max_weight!r}; a weight in [0, 1]")
        if rollout not in ("random", "surrogate") or int(rollouts) < 1:
            raise SearchError(f"mcts: rollout={rollout!r} (random, surrogate), rollouts={rollouts} (>= 1)")
        self.c, self.binarize, self.max_weight = c, bool(binarize), float(max_weight)
        self.rollout, self.rollouts = rollout, int(rollouts)
        self._surrogate = RidgeSurrogate(self.space)
        self._stats: dict[Key, list[float]] = {}  # key -> [visits, summed reward, best reward]
        self._rewards: list[float] = []

    def settings(self) -> dict[str, Any]:
        return {"c": self.c, "binarize": self.binarize, "max_weight": self.max_weight,
                "rollout": self.rollout, "rollouts": self.rollouts}

    # -- learning ------------------------------------------------------------------------------
    def observe(self, obs: Observation) -> None:
        if obs.state == "PRUNED":  # predicted infeasible: never evaluated, teaches nothing
            return
        if obs.state == "COMPLETE":
            reward = self.scalarize(obs.metrics)
            self._rewards.append(reward)
            self._surrogate.add(obs.arch, reward)
        else:  # a failed architecture is as bad as the worst seen
            reward = min(self._rewards, default=0.0)
        key: Key = ()
        self._add(key, reward)
        for move in self._moves(obs.arch):
            key = key + (move,)
            self._add(key, reward)

    def _add(self, key: Key, reward: float) -> None:
        s = self._stats.setdefault(key, [0.0, 0.0, -math.inf])
        s[0] += 1
        s[1] += reward
        s[2] = max(s[2], reward)

    def _moves(self, arch: Architecture) -> list[Move]:
        """Return the tree moves of `arch`: its decisions in walk order (split in halves if binarised)."""
        decisions = self.decisions()
        moves: list[Move] = []
        for label in walk(self.space.root, replay(arch)):  # keys come back in walk order
            options = decisions[label]
            i = option_index(options, arch[label])
            lo, hi = 0, len(options)
            if not self.binarize:
                moves.append((label, i, i + 1))
                continue
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if i < mid else (mid, hi)
                moves.append((label, lo, hi))
        return moves

    # -- proposing -----------------------------------------------------------------------------
    def propose(self) -> Architecture:
        rng = self.step_rng()
        seen = self.seen()
        for _ in range(self.max_repeats):
            arch = self._descend(rng)
            if arch.id not in seen:
                return arch
        return random_unseen(self.space, rng, seen)

    def _descend(self, rng: random.Random) -> Architecture:
        partial: dict[str, Any] = {}
        key: Key = ()
        while (d := self.space.next_decision(partial)) is not None:
            lo, hi = 0, len(d.options)
            while hi - lo > 1:
                children = self._children(d.label, lo, hi)
                move, expanded = self._pick(key, children, rng)
                key, (_, lo, hi) = key + (move,), move
                if expanded:  # a new node: finish this decision and the rest by rollouts
                    partial[d.label] = d.options[rng.randrange(lo, hi)]
                    return self._finish(partial, rng)
            partial[d.label] = d.options[lo]
        return self.space.complete(partial, random_chooser(rng))

    def _finish(self, partial: dict[str, Any], rng: random.Random) -> Architecture:
        """Return a completion of `partial`: random, or the surrogate's best of `rollouts` random ones."""
        if self.rollout == "random" or len(self._rewards) < 10:
            return self.space.complete(partial, random_chooser(rng))
        seen = self.seen()
        options = {a.id: a for a in (self.space.complete(partial, random_chooser(rng))
                                     for _ in range(self.rollouts)) if a.id not in seen}
        if not options:
            return self.space.complete(partial, random_chooser(rng))
        archs = list(options.values())
        return archs[int(np.argmax(self._surrogate.predict(archs)))]

    def _children(self, label: str, lo: int, hi: int) -> list[Move]:
        if not self.binarize:
            return [(label, i, i + 1) for i in range(lo, hi)]
        mid = (lo + hi) // 2
        return [(label, lo, mid), (label, mid, hi)]

    def _pick(self, key: Key, children: list[Move], rng: random.Random) -> tuple[Move, bool]:
        """Return the child to follow and whether it is unvisited (an expansion)."""
        stats = [self._stats.get(key + (m,)) for m in children]
        unvisited = [m for m, s in zip(children, stats, strict=True) if s is None]
        if unvisited:
            return rng.choice(unvisited), True
        lo, hi = min(self._rewards, default=0.0), max(self._rewards, default=1.0)
        scale = hi - lo if hi > lo else 1.0
        total = sum(s[0] for s in stats)  # type: ignore[index]
        best, best_score = children[0], -math.inf
        for m, s in zip(children, stats, strict=True):
            n, reward, top = s  # type: ignore[misc]
            # a blend of the mean and the best reward below the node: for optimisation (one
            # player, deterministic rewards) the best descendant matters more than the average
            value = (1 - self.max_weight) * reward / n + self.max_weight * top
            score = (value - lo) / scale + self.c * math.sqrt(math.log(total) / n)
            score += 1e-9 * rng.random()  # random tie-break, reproducible through rng
            if score > best_score:
                best, best_score = m, score
        return best, False

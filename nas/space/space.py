"""`Space`: an unassigned graph plus its input shape; it draws, checks, counts and builds architectures."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from nas.errors import SpaceError
from nas.space import walk as W
from nas.space.architecture import Architecture
from nas.space.hyper import Choice, one_object_per_label
from nas.space.nodes import Node, as_node
from nas.space.precision import Quantization

if TYPE_CHECKING:
    import torch


class Space:
    """A search space: `sample`, `next_decision`, `validate`, `build`, `size`, `describe`."""

    def __init__(self, root: Any, input_shape: tuple[int, ...], *, name: str | None = None,
                 quantization: Quantization | None = None) -> None:
        self.root = as_node(root, "Space(root)")
        if not isinstance(input_shape, tuple | list) or not all(
            isinstance(d, int) and d > 0 for d in input_shape
        ):
            raise SpaceError(
                f"Space(input_shape={input_shape!r}): give the shape of one example without the "
                "batch dimension, e.g. (1, 28, 28)"
            )
        self.input_shape = tuple(input_shape)
        self.name = name
        if quantization is not None and not isinstance(quantization, Quantization):
            raise SpaceError("Space(quantization=...) takes S.per_layer([...]) or S.global_precision([...])")
        self.quantization = quantization
        self._description: dict | None = None
        self._extra_decisions: dict[int, Any] | None = None  # memo: id(layer) -> precision decision
        self._choices: dict[str, Choice] | None = None  # memo: label path -> its one decision object
        # Checked here, where the space is written, rather than left to the walk: two hyperparameters
        # given one label would otherwise be merged silently, or clash only at the first draw.
        self._decision_objects()

    # -- drawing -------------------------------------------------------------------------------
    def walk(self, chooser: W.Chooser) -> Architecture:
        """Return the architecture drawn by asking `chooser` for each open decision in walk order."""
        return Architecture(W.walk(self.root, chooser, self.precision_decisions()))

    def sample(self, seed: int | random.Random = 0, *, uniform: str = "decisions") -> Architecture:
        """Return a random architecture; the same seed gives the same one on any machine.

        `uniform="decisions"` draws each decision uniformly; `"architectures"` draws uniformly over
        all distinct architectures (counts from `size()`), which favours deeper variants.
        """
        if uniform == "decisions":
            return self.walk(W.random_chooser(seed))
        if uniform == "architectures":
            s = seed if isinstance(seed, int) else seed.randrange(2**63)
            return Architecture(W.uniform_chooser(self.root, s, self.precision_decisions())())
        raise SpaceError(f"sample(uniform={uniform!r}): valid values are 'decisions', 'architectures'")

    def next_decision(self, partial: Mapping[str, Any]) -> W.Decision | None:
        """Return the next open decision given a partial assignment, or None when it is complete."""
        return W.next_decision(self.root, partial, self.precision_decisions())

    def complete(self, partial: Mapping[str, Any], chooser: W.Chooser) -> Architecture:
        """Return the architecture that keeps `partial`'s active values and asks `chooser` for the rest."""
        return self.walk(lambda d: partial[d.label] if d.label in partial else chooser(d))

    def architectures(self) -> Iterator[Architecture]:
        """Yield every architecture (depth-first); only for spaces small enough to enumerate."""
        return (Architecture(v) for v in W.iter_assignments(self.root, self.precision_decisions()))

    # -- checking ------------------------------------------------------------------------------
    def validate(self, arch: Mapping[str, Any]) -> Architecture:
        """Return `arch` as an Architecture if it is exactly an architecture of this space, else raise."""
        values = W.walk(self.root, W.replay(arch), self.precision_decisions())
        extra = sorted(set(arch) - set(values))
        if extra:
            raise SpaceError(
                f"the architecture has decisions this space does not have or that are inactive: "
                f"{extra}; it was made for another version of the space (active decisions: "
                f"{list(values)})"
            )
        return Architecture(values)

    def build(self, arch: Mapping[str, Any]) -> torch.nn.Module:
        """Return a fresh `torch.nn.Module` for the architecture (validated first)."""
        from nas.compile import build

        return build(self, self.validate(arch))

    # -- describing ----------------------------------------------------------------------------
    def size(self) -> int:
        """Return the exact number of distinct architectures (a Python int, however large)."""
        return W.Counter(self.root, self.precision_decisions()).count()

    def decisions(self) -> dict[str, tuple]:
        """Return every decision any architecture can have: label -> options, in first-seen order."""
        return {path: c.keys for path, c in self._decision_objects().items()}

    def _decision_objects(self) -> dict[str, Choice]:
        if self._choices is None:
            self._choices = one_object_per_label(self._all_choices())
        return self._choices

    def _all_choices(self) -> Iterator[Choice]:
        extra = self.precision_decisions()
        for node in self.nodes():
            yield from node.decisions()
            if id(node) in extra:
                yield extra[id(node)]

    def quant_policy(self, arch: Mapping[str, Any]) -> dict[str, str]:
        """Return the architecture's precision per layer, keyed by the module name in `build(arch)`."""
        from nas.compile import quant_policy

        return quant_policy(self, self.validate(arch)) if self.quantization else {}

    def precision_decisions(self) -> dict[int, Any]:
        """Return the precision decision of each quantizable layer by id(layer) ({} without a policy)."""
        if self._extra_decisions is None:
            self._extra_decisions = (
                self.quantization.decisions(self.nodes()) if self.quantization else {})
        return self._extra_decisions

    def describe(self) -> dict:
        """Return a JSON-able description of the whole space (nodes, wiring and decisions)."""
        if self._description is None:
            nodes = list(self.nodes())
            index = {id(n): i for i, n in enumerate(nodes)}
            self._description = {
                "name": self.name,
                "input_shape": list(self.input_shape),
                "nodes": [
                    {**n.describe(), "children": [index[id(c)] for c in n.all_children()]}
                    for n in nodes
                ],
                "decisions": {k: list(v) for k, v in self.decisions().items()},
                "quantization": (None if self.quantization is None else
                                 {"options": list(self.quantization.options),
                                  "granularity": self.quantization.granularity}),
            }
        return self._description

    @property
    def fingerprint(self) -> str:
        """Return a stable hash of `describe()`: equal spaces share it, edited spaces do not."""
        text = json.dumps(self.describe(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def nodes(self) -> Iterator[Node]:
        """Yield every node of the space once, active under some architecture or not."""
        seen: set[int] = set()
        counter = W.Counter(self.root)
        try:
            counter.reach(self.root)  # raises a clear SpaceError on a cycle before we traverse
        except RecursionError as e:  # a cycle made of fresh nodes: a builder that calls itself
            raise SpaceError("the space contains a cycle: a builder function calls itself") from e
        todo = [self.root]
        while todo:
            node = todo.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            yield node
            todo.extend(reversed(list(node.all_children())))

    def __repr__(self) -> str:
        return f"Space({self.name or self.root.hint!r}, input_shape={self.input_shape})"


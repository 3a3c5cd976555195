"""Random search: uniform over decisions, or uniform over architectures."""

from __future__ import annotations

from typing import Any

from nas.errors import SearchError
from nas.search.base import Searcher
from nas.space import Architecture
from nas.space.walk import uniform_chooser


class RandomSearch(Searcher):
    """Draws architectures at random, never proposing one already seen while new ones remain."""

    name = "random"
    max_repeats = 200  # draws of already-seen architectures before accepting a repeat

    def configure(self, uniform: str = "decisions", **rest: Any) -> None:
        super().configure(**rest)
        if uniform not in ("decisions", "architectures"):
            raise SearchError(f"random: uniform={uniform!r}; valid: decisions, architectures")
        self.uniform = uniform
        self._draw_uniform = None

    def settings(self) -> dict[str, Any]:
        return {"uniform": self.uniform}

    def _draw(self) -> Architecture:
        if self.uniform == "decisions":
            return self.space.sample(self.rng)
        if self._draw_uniform is None:
            self._draw_uniform = uniform_chooser(self.space.root, self.rng.randrange(2**63))
        return Architecture(self._draw_uniform())

    def propose(self) -> Architecture:
        seen = self.seen()
        for _ in range(self.max_repeats):
            arch = self._draw()
            if arch.id not in seen:
                return arch
        return arch

"""Any Optuna sampler behind the searcher contract, driven through Optuna's ask/tell interface.

Each decision is one `suggest_categorical` whose parameter name is the decision's label path, asked
in walk order, so conditional decisions (a choice inside an optional block) are simply not asked
when inactive: Optuna's define-by-run model of conditional spaces. Several objectives make a
multi-objective study (use a sampler that supports them: tpe, nsga2, nsga3, gp, random).

A proposal that repeats a finished architecture is told its known values at once and costs no
budget; the study lives in memory (the project's store keeps the trials) and `restore` rebuilds
it with `add_trial`. Settings: `sampler=<name>` (from `optuna:<name>`), `max_repeats=1` (sampler
calls per ask before an unseen neighbour of the repeated proposal is taken instead: each call
costs ~15 ms for TPE at 1,000 trials, and TPE there repeats ~4 times per new cell), and any
keyword of that sampler's constructor, e.g. `--searcher-arg n_startup_trials=5`.
"""

from __future__ import annotations

from typing import Any

from nas.errors import SearchError
from nas.search.base import Observation, Searcher
from nas.search.mutation import mutate, random_unseen
from nas.space import Architecture

SAMPLERS = {
    "tpe": "TPESampler", "gp": "GPSampler", "cmaes": "CmaEsSampler", "nsga2": "NSGAIISampler",
    "nsga3": "NSGAIIISampler", "random": "RandomSampler", "qmc": "QMCSampler",
    "bruteforce": "BruteForceSampler",
}


class OptunaSearch(Searcher):
    """An Optuna study as a searcher: each ask is `study.ask()` walked through the space."""

    name = "optuna"
    max_repeats = 1  # sampler calls per ask before an unseen neighbour of a repeat is taken

    def configure(self, sampler: str = "tpe", max_repeats: int = 1, **sampler_args: Any) -> None:
        import optuna

        if int(max_repeats) < 1:
            raise SearchError(f"optuna: max_repeats={max_repeats}; valid: an integer >= 1")
        # each repeat costs one more sampler call (TPE: ~15 ms at 1,000 trials, and it repeats
        # finished cells ~4 times per new one there); the repeat's unseen neighbour costs none and
        # searched better on NAS-Bench-201 than re-asking up to 50 times (docs/searchers.md)
        self.max_repeats = int(max_repeats)

        if sampler not in SAMPLERS:
            raise SearchError(f"optuna sampler {sampler!r} unknown; valid: {', '.join(SAMPLERS)}")
        cls = getattr(optuna.samplers, SAMPLERS[sampler])
        args = dict(sampler_args)
        if sampler == "tpe" and len(self.objectives) == 1:
            args.setdefault("constant_liar", True)  # pending trials repel new proposals
        try:
            self._sampler = cls(seed=self.seed, **args)
        except TypeError as e:
            raise SearchError(f"optuna:{sampler}: {e}; see optuna.samplers.{SAMPLERS[sampler]}") from e
        self.sampler_name, self.sampler_args = sampler, sampler_args
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        directions = ["maximize" if o.direction == "max" else "minimize" for o in self.objectives]
        self._study = optuna.create_study(directions=directions, sampler=self._sampler)
        self._trials: dict[str, list[Any]] = {}  # arch id -> open optuna trials
        self._known: dict[str, list[float] | None] = {}  # arch id -> values (None: failed)

    def settings(self) -> dict[str, Any]:
        extra = {} if self.max_repeats == 1 else {"max_repeats": self.max_repeats}
        return {"sampler": self.sampler_name, **extra, **self.sampler_args}

    def _distributions(self, arch: Architecture) -> dict[str, Any]:
        from optuna.distributions import CategoricalDistribution

        decisions = self.decisions()
        return {label: CategoricalDistribution(list(decisions[label])) for label in arch}

    def propose(self) -> Architecture:
        seen = self.seen()
        repeated = None
        for _ in range(self.max_repeats):
            trial = self._study.ask()
            arch = self.space.walk(lambda d, t=trial: t.suggest_categorical(d.label, list(d.options)))
            if arch.id in self._known:  # a repeat: answer from memory, no budget spent
                self._finish(trial, self._known[arch.id])
                repeated = arch
                continue
            if arch.id in seen:  # pending elsewhere: leave this trial open as a duplicate lie
                self._finish(trial, None)
                repeated = arch
                continue
            self._trials.setdefault(arch.id, []).append(trial)
            return arch
        arch = self._unseen_near(repeated, seen)
        self._study.enqueue_trial(dict(arch), skip_if_exists=False)
        trial = self._study.ask()
        self.space.walk(lambda d, t=trial: t.suggest_categorical(d.label, list(d.options)))
        self._trials.setdefault(arch.id, []).append(trial)
        return arch

    def _unseen_near(self, arch: Architecture | None, seen: set[str]) -> Architecture:
        """Return an unseen architecture one (else two) decisions from `arch`, else a random one.

        The sampler's repeated proposal is where its model puts the mass; its nearest unseen
        neighbours keep to that region for the price of no further sampler call.
        """
        rng = self.step_rng("near")
        if arch is not None:
            for n_changes in (1, 2):
                for _ in range(25):
                    cand = mutate(self.space, arch, rng, n_changes, self.decisions())
                    if cand.id not in seen:
                        return cand
        return random_unseen(self.space, rng, seen)

    def _finish(self, trial: Any, values: list[float] | None) -> None:
        import optuna

        if values is None:
            self._study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self._study.tell(trial, values if len(values) > 1 else values[0])

    def observe(self, obs: Observation) -> None:
        import optuna

        values = ([float(obs.metrics[o.name]) for o in self.objectives]
                  if obs.state == "COMPLETE" else None)
        if obs.state != "PRUNED":
            self._known[obs.arch.id] = values
        open_trials = self._trials.pop(obs.arch.id, [])
        if open_trials:
            for trial in open_trials:
                if obs.state == "PRUNED":
                    self._study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                else:
                    self._finish(trial, values)
            return
        if obs.state == "PRUNED":
            return
        # a trial this study never asked (restore, or another searcher's): add it as finished
        state = (optuna.trial.TrialState.COMPLETE if values is not None
                 else optuna.trial.TrialState.FAIL)
        self._study.add_trial(optuna.trial.create_trial(
            params=dict(obs.arch), distributions=self._distributions(obs.arch),
            values=values, state=state))

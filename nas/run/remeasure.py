"""The final re-measure: a study's Pareto front timed on the device after a search that predicted it.

Predicted latency steers the search; the front a user takes away is measured, and the store keeps
both figures (`latency_ms_predicted`, `latency_ms_measured`).
"""

from __future__ import annotations

from collections.abc import Sequence

from nas.evaluate.quant_evaluator import as_quantized
from nas.objectives import Constraint, Objective
from nas.results.best import best_trials
from nas.space import Architecture, Space
from nas.store import Store, StudyRecord, TrialRecord


def remeasure_front(store: Store, study: StudyRecord, space: Space, objectives: Sequence[Objective],
                    constraints: Sequence[Constraint], *, device: str = "cpu", batch_size: int = 1,
                    threads: int | None = None) -> list[TrialRecord]:
    """Measure the latency of the study's final front and store it; return the updated front."""
    from nas.hardware import measure_latency
    from nas.predictors.quant_kernels import is_quantized_model
    from nas.results.export import load_weights
    from nas.results.weights import trial_weights

    front = best_trials(store.trials(study.id), objectives, constraints)
    updated = []
    for t in front:
        model = space.build(t.architecture)
        weights = trial_weights(store, study, t)
        if weights is not None:
            load_weights(model, weights)
        if space.quantization:
            model = as_quantized(model, space, Architecture(t.architecture))
            device = "cpu" if model is not None and is_quantized_model(model) else device
        ms = measure_latency(model, space.input_shape, batch_size=batch_size, device=device,
                             threads=threads)
        updated.append(store.add_metrics(t.id, {"latency_ms_measured": ms}))
    return updated

"""Trained weights belong to the trial that produced them.

Weights are stored once per (space fingerprint, architecture, key), where the key is a digest of
everything that shaped them: the evaluator's whole description (data set, data folder, training
settings, quantization, pruning...) and the training seed. A trial records which blob is its own
(`extra["weights_ref"]`), so a second study on the same space with other settings can neither
overwrite nor hand out the first one's weights; a cache hit (a quantized study's policies sharing
one trained structure) happens only under an identical key, and the trial says so
(`extra["weights"] == "cached"`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nas.store import StudyRecord, TrialRecord, TrialState

if TYPE_CHECKING:
    from nas.store import Store

WEIGHTS_REF = "weights_ref"


def weights_key(description: Mapping[str, Any], seed: int) -> str:
    """Return the key of weights trained by an evaluator so described, with `seed`."""
    text = json.dumps({"evaluator": description, "seed": seed}, sort_keys=True, default=str)
    return "trained-" + hashlib.sha256(text.encode()).hexdigest()[:24]


class StoreWeightCache:
    """Trained weights kept in the store under one study's key (what `QuantEvaluator` reads)."""

    def __init__(self, store: Store, fingerprint: str, key: str) -> None:
        self.store, self.fingerprint, self.key = store, fingerprint, key

    def get(self, arch_id: str) -> bytes | None:
        """Return the safetensors bytes stored for `arch_id` under this key, or None."""
        return self.store.get_weights(self.fingerprint, arch_id, self.key)

    def put(self, arch_id: str, data: bytes) -> None:
        """Store safetensors bytes for `arch_id` under this key."""
        self.store.put_weights(self.fingerprint, arch_id, self.key, data)


def trial_weights(store: Store, study: StudyRecord, trial: TrialRecord) -> bytes | None:
    """Return the weights the trial itself trained (or shares by an identical key), or None."""
    ref = trial.extra.get(WEIGHTS_REF) if trial.state == TrialState.COMPLETE else None
    if not isinstance(ref, dict):
        return None
    return store.get_weights(study.space_fingerprint, str(ref.get("arch_id")), str(ref.get("key")))

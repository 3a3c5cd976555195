"""Running a study: the search loop, where trials run, and the evaluator stack a study assembles.

`nas.run.search(space, evaluator=..., searcher=...)` is the Python API's entry. The names below are
loaded on first use, so that `nas --help` and the store's readers never import torch.
"""

from __future__ import annotations

from nas.lazy import lazy_attributes

_PUBLIC = {"search": "nas.run.loop", "StudyResult": "nas.run.loop", "Progress": "nas.run.loop"}
__all__ = sorted(_PUBLIC)

__getattr__ = lazy_attributes(__name__, _PUBLIC)

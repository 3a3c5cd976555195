"""The import paths that moved keep working for a release: same module objects, a DeprecationWarning."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

from nas.deprecated_paths import MOVES, PACKAGES


@pytest.mark.parametrize("old", sorted(MOVES))
def test_an_old_module_path_is_the_new_module_with_a_warning(old):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {MOVES[old]}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(MOVES[old])


def test_from_an_old_path_gives_the_same_objects():
    sys.modules.pop("nas.evaluate.training", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from nas.evaluate.training import TrainEvaluator as old
    from nas.evaluate.train_evaluator import TrainEvaluator
    assert old is TrainEvaluator


@pytest.mark.parametrize("old", sorted(PACKAGES))
def test_an_old_top_level_package_and_its_submodules_alias_the_new_ones(old):
    # a fresh interpreter: the top-level shim must work even before nas is imported
    new = PACKAGES[old]
    code = (
        "import warnings, importlib\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        f"try:\n    import {old}\nexcept DeprecationWarning as w:\n    print('warned:', w)\n"
        "warnings.simplefilter('ignore', DeprecationWarning)\n"
        f"import {old}, {new}\n"
        f"sub = sorted(m for m in importlib.import_module('pkgutil').iter_modules({new}.__path__))[0].name\n"
        f"a = importlib.import_module('{old}.' + sub)\n"
        f"b = importlib.import_module('{new}.' + sub)\n"
        f"print({old} is {new}, a is b)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert f"warned: {old} moved to {new}" in out
    assert out.strip().endswith("True True")


def test_a_users_own_package_of_an_old_name_is_left_alone(tmp_path):
    # once `nas` is imported, a user's own `predictors` package still imports as theirs
    (tmp_path / "predictors").mkdir()
    (tmp_path / "predictors" / "__init__.py").write_text("")
    (tmp_path / "predictors" / "mine.py").write_text("WHO = 'user'\n")
    code = "import nas\nimport predictors.mine\nprint(predictors.mine.WHO)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path).stdout
    assert out.strip() == "user"

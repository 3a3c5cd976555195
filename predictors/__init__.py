"""Deprecated: `predictors` is now `nas.predictors`; this alias warns and goes in a later release."""

from nas.deprecated_paths import alias_package

alias_package(__name__)

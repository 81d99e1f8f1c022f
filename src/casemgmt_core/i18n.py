"""Korean and English labels, read from ``labels.toml`` (data, not identifiers)."""

from __future__ import annotations

import functools
import tomllib
from enum import Enum
from importlib import resources
from typing import Literal

__all__ = ["LANGUAGES", "label", "labels"]

Language = Literal["ko", "en"]
LANGUAGES: tuple[Language, ...] = ("ko", "en")


@functools.cache
def labels() -> dict[str, dict[str, dict[str, str]]]:
    """All labels: ``{table: {key: {"ko": ..., "en": ...}}}``."""
    text = resources.files(__package__).joinpath("labels.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def label(table: str, key: str | Enum, language: Language = "ko") -> str:
    """The label of ``key`` in ``table`` (e.g. ``label("state", CaseState.INTAKE)``).

    Raises ``KeyError`` naming the table and key when there is none.
    """
    value = key.value if isinstance(key, Enum) else key
    try:
        return labels()[table][str(value)][language]
    except KeyError:
        raise KeyError(f"no {language!r} label for {value!r} in table {table!r}") from None

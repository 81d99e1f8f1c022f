"""Validators and error wording shared by the TOML loaders (policy and simulation scenario)."""

from __future__ import annotations

import math
from typing import Any

import cattrs
from attrs import Attribute, fields, has
from cattrs.v import format_exception

__all__ = ["describe_error", "non_negative", "positive"]


def positive(_: object, attribute: Attribute[Any], value: float) -> None:
    if not math.isfinite(value) or not value > 0:
        raise ValueError(f"{attribute.name} must be more than 0, got {value}")


def non_negative(_: object, attribute: Attribute[Any], value: float) -> None:
    if not math.isfinite(value) or not value >= 0:
        raise ValueError(f"{attribute.name} must be 0 or more, got {value}")


def describe_error(exc: BaseException, type_: Any) -> str:
    """``format_exception`` for ``cattrs.transform_error``: names the keys an unknown key could
    have been, and keeps our validators' messages, which are written for the reader."""
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        allowed = ", ".join(a.name for a in fields(exc.cl)) if has(exc.cl) else ""
        return f"unknown key(s) {', '.join(sorted(exc.extra_fields))} (allowed: {allowed})"
    if (
        isinstance(exc, ValueError | TypeError)
        and not isinstance(exc, cattrs.BaseValidationError)
        and str(exc)
    ):
        return str(exc)
    return format_exception(exc, type_)

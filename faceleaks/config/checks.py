"""Checks shared by the config sections: positive integers, finite rates, fractions."""

from __future__ import annotations

import math

from faceleaks.errors import ConfigError

__all__ = ["positive", "positive_ints", "rates", "fraction", "number_in"]


def positive(owner: object, *names: str) -> None:
    """``ConfigError`` unless each named field of ``owner`` is a positive integer."""
    for name in names:
        value = getattr(owner, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{type(owner).__name__}.{name} must be a positive integer, got {value!r}")


def rates(owner: object, *names: str, zero_ok: tuple[str, ...] = ()) -> None:
    """``ConfigError`` unless each named field is a finite number > 0 (>= 0 for those in ``zero_ok``).

    Learning rates and weight decays: NaN, inf, negative (or zero learning rates) never reach torch.
    """
    for name in names:
        value = getattr(owner, name)
        low_ok = name in zero_ok
        if value is None and name.startswith("finetune_"):
            continue
        if (not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
                or value < 0 or (value == 0 and not low_ok)):
            what = "a finite number >= 0" if low_ok else "a finite positive number"
            raise ConfigError(f"{type(owner).__name__}.{name} must be {what}, got {value!r}")


def fraction(owner: object, name: str, *, open_low: bool = True) -> None:
    value = getattr(owner, name)
    if not isinstance(value, (int, float)) or not (0.0 < value < 1.0 if open_low else 0.0 <= value < 1.0):
        raise ConfigError(f"{type(owner).__name__}.{name} must be a fraction in (0, 1), got {value!r}")


def positive_ints(owner: str, name: str, values) -> None:
    """``ConfigError`` unless ``values`` is a non-empty sequence of positive integers."""
    if not values or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
        raise ConfigError(f"{owner}.{name} must be positive integers, got {values!r}")



def number_in(owner: object, name: str, low: float, high: float | None = None, *, low_ok: bool = False,
              high_ok: bool = False) -> None:
    """``ConfigError`` unless the named field is a finite number in the interval from ``low`` to ``high``.

    The interval is open at each end unless ``low_ok`` / ``high_ok``; ``high`` None: no upper bound
    (but still finite, so NaN and inf never pass).
    """
    v = getattr(owner, name)
    ok = (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
          and (v >= low if low_ok else v > low) and (high is None or (v <= high if high_ok else v < high)))
    if not ok:
        rng = f"{'[' if low_ok else '('}{low:g}, {f'{high:g}' if high is not None else 'inf'}{']' if high_ok else ')'}"
        raise ConfigError(f"{type(owner).__name__}.{name} must be a finite number in {rng}, got {v!r}")

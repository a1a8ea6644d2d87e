"""What the HTML report quotes: the headline attack, fixed in the config before the run.

The verdict at the top of ``report.html`` quotes one membership result, chosen here before any
result exists, so that the page cannot pick the best of some 300 rows afterwards (which would
overstate the leak). The selection is recorded with the run (``results.json``: ``config.report``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from faceleaks.errors import ConfigError

__all__ = ["HeadlineSpec", "ReportConfig"]

_LEVELS = ("identity", "instance")
_SETTINGS = ("training-photos", "unseen-photos")


@dataclass(frozen=True)
class HeadlineSpec:
    """The one membership row the report's verdict quotes (a row selector; teacher ``victim``).

    Attributes
    ----------
    attack : str
        Attack name including its statistic, without ``@k=...`` (e.g. ``base-diff-consistency_gap``,
        ``lira-online-compactness``, ``max_posterior``). Default: the no-shadow Fisher gap (the
        consistency gap with pairs' cosines on the arctanh scale, issue 13), the strongest attack that
        needs neither shadow teachers nor member labels [reconstructed].
    level : str
        ``identity`` (one decision per person from ``k`` photos) or ``instance`` (per photo).
    k : int
        Photos per person (ignored at instance level).
    setting : str
        ``training-photos`` (the attacker holds the photos the teacher trained on) or ``unseen-photos``.
    student : str
        The student API attacked (e.g. ``lfw-identity``).

    Raises
    ------
    ConfigError
        On an unknown level or setting, a non-positive ``k`` or an empty attack or student name.

    Examples
    --------
    >>> HeadlineSpec().row_name
    'base-diff-fisher_gap@k=5'
    """

    attack: str = "base-diff-fisher_gap"
    level: str = "identity"
    k: int = 5
    setting: str = "training-photos"
    student: str = "lfw-identity"

    def __post_init__(self) -> None:
        if self.level not in _LEVELS:
            raise ConfigError(f"report.headline.level must be one of {_LEVELS}, got {self.level!r}")
        if self.setting not in _SETTINGS:
            raise ConfigError(f"report.headline.setting must be one of {_SETTINGS}, got {self.setting!r}")
        if not isinstance(self.k, int) or isinstance(self.k, bool) or self.k < 1:
            raise ConfigError(f"report.headline.k must be a positive integer, got {self.k!r}")
        for name in ("attack", "student"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"report.headline.{name} must be a non-empty name, got {getattr(self, name)!r}")

    @property
    def row_name(self) -> str:
        """The ``MembershipReport.attack`` this selects (``attack@k=K`` at identity level)."""
        return f"{self.attack}@k={self.k}" if self.level == "identity" else self.attack


@dataclass(frozen=True)
class ReportConfig:
    """Settings of the HTML report; ``headline`` may be given as a dict (TOML ``[report.headline]``),
    whose keys override the defaults of :class:`HeadlineSpec`.

    Raises
    ------
    ConfigError
        On an unknown key of ``headline`` or a bad value.
    """

    headline: HeadlineSpec = field(default_factory=HeadlineSpec)

    def __post_init__(self) -> None:
        if isinstance(self.headline, dict):
            object.__setattr__(self, "headline", headline_from_dict(self.headline))
        elif not isinstance(self.headline, HeadlineSpec):
            raise ConfigError(f"report.headline must be a table of settings, got {self.headline!r}")


def headline_from_dict(values: dict[str, Any]) -> HeadlineSpec:
    """A :class:`HeadlineSpec` from a (partial) dict over the defaults; ``ConfigError`` on unknown keys."""
    known = {f.name for f in fields(HeadlineSpec)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown} in [report.headline]; known: {sorted(known)}")
    return HeadlineSpec(**{**asdict(HeadlineSpec()), **values})

"""The headline row: the membership result ``report.headline`` fixed before the run (torch-free).

A results file written before ``report.headline`` existed has no ``config.report``; the default
:class:`~faceleaks.config.report.HeadlineSpec` is used then and the page says so.
"""

from __future__ import annotations

import math
from typing import Any

from faceleaks.config.report import HeadlineSpec, headline_from_dict
from faceleaks.errors import ConfigError
from faceleaks.evaluation.results import MembershipReport

__all__ = ["headline_spec", "headline_rows", "headline_note", "chance_words", "at_chance"]


def headline_spec(config: dict[str, Any]) -> tuple[HeadlineSpec, bool]:
    """The headline selector recorded in a run's ``config`` and whether it was recorded there.

    Returns
    -------
    spec : HeadlineSpec, the recorded one, or the default when absent or unreadable
    recorded : bool, False when the default was substituted
    """
    raw = (config.get("report") or {}).get("headline")
    if not isinstance(raw, dict):
        return HeadlineSpec(), False
    try:
        return headline_from_dict(raw), True
    except ConfigError:
        return HeadlineSpec(), False


def headline_rows(membership: tuple[MembershipReport, ...], spec: HeadlineSpec,
                  ) -> tuple[MembershipReport | None, MembershipReport | None]:
    """The victim's and the negative control's rows selected by ``spec`` (None where absent)."""
    def pick(teacher: str) -> MembershipReport | None:
        return next((m for m in membership if m.teacher == teacher and m.attack == spec.row_name
                     and m.level == spec.level and m.setting == spec.setting and m.student == spec.student), None)
    return pick("victim"), pick("control")


def headline_note(spec: HeadlineSpec, recorded: bool, source: str = "results.json") -> str:
    """One sentence naming the headline attack and where the choice came from (``source``: the file read)."""
    where = ("fixed in the run's config before it ran (report.headline)" if recorded else
             f"the default (this {source} predates report.headline, so the run did not record one)")
    at = f"at k = {spec.k} photos per person" if spec.level == "identity" else "per photo"
    return (f"Headline attack: {spec.attack} {at}, {spec.level} level, {spec.setting}, through the "
            f"{spec.student} student; {where}. It is not the best of the rows below, which would overstate "
            "the leak; every other attack is in the membership section.")


def at_chance(ci: tuple[float, float]) -> bool:
    """Whether an AUC interval covers chance (one half)."""
    lo, hi = ci
    return not (math.isnan(lo) or math.isnan(hi)) and lo <= 0.5 <= hi


def chance_words(ci: tuple[float, float]) -> str:
    """``stays at chance`` when the control's AUC interval covers one half, else a warning."""
    if at_chance(ci):
        return "stays at chance"
    return "does not stay at chance (its interval excludes it; read the victim's numbers with caution)"

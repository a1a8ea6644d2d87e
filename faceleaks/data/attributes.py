"""Sensitive-attribute labels and the attacker's labelled budgets: the public import path.

The labels (codes, LFW's label CSV, ``LabelColumn``, ``LabelledFaces``) live in
:mod:`faceleaks.data.labels`; the seeded pools, budgets and LFW targets in
:mod:`faceleaks.data.budgets`. This module re-exports both, so ``from faceleaks.data.attributes
import ...`` keeps working.
"""

from __future__ import annotations

from faceleaks.data.budgets import choose_lfw_targets, sample_budget, top_up, utk_pools
from faceleaks.data.labels import (GENDERS, LFW_RACE_MAP, RACES, LabelColumn, LabelledFaces, LfwAttributes,
                                   class_counts, find_lfw_attributes, label_column, load_lfw_attributes,
                                   map_lfw_gender, map_lfw_race)

__all__ = [
    "GENDERS", "RACES", "LFW_RACE_MAP", "LabelColumn", "LfwAttributes", "map_lfw_gender", "map_lfw_race",
    "find_lfw_attributes", "load_lfw_attributes", "label_column", "class_counts", "sample_budget",
    "utk_pools", "top_up", "LabelledFaces", "choose_lfw_targets",
]

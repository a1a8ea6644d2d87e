"""Attack contracts and result types.

Every membership attack follows one contract, modelled on scikit-learn's estimators:

- ``__init__`` takes keyword-only hyperparameters and stores each under its own name;
- ``needs`` declares the attacker resources ``fit`` must receive (a subset of ``RESOURCES``:
  ``"references"``, ``"public_base"``, ``"shadows"``, ``"pool"``) and ``supports(kind)`` the output
  kinds it can use;
- ``fit(references=(), *, public_base=None, shadows=(), pool=None)`` calibrates and returns
  ``self`` (fitted state ends in ``_``); an attack ignores the resources it does not need;
- ``score(box, images, *, identity_ids, image_ids=None)`` scores through ``box.query`` only.

Attacks see victim students only through ``BlackBox.query``; ``ReferenceSet`` carries what the
attacker may know. Sign convention: ``MembershipScores.scores`` are **higher = more likely
member**, always.
"""

from __future__ import annotations

import abc
import enum
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from faceleaks.errors import DataError, NotFittedError, UnsupportedOutputError
from faceleaks.serving.protocol import BlackBox, OutputKind

__all__ = ["Level", "ReferenceSet", "MembershipScores", "MembershipAttack", "PublicBase", "ShadowModel",
           "RESOURCES", "group_indices", "first_k_groups", "stack_groups"]

RESOURCES = frozenset({"references", "public_base", "shadows", "pool"})
_RESOURCE_HELP = {"references": "known non-member references (references=[ReferenceSet, ...])",
                  "public_base": "the public base model (public_base=PublicBase)",
                  "shadows": "shadow models (shadows=[ShadowModel, ...])",
                  "pool": "a reference pool of photos of many known non-members queried on the victim box "
                          "(pool=ReferenceSet)"}


class Level(enum.Enum):
    """INSTANCE: one score per photo. IDENTITY: one score per person, from k of their photos."""

    INSTANCE = "instance"
    IDENTITY = "identity"


@dataclass(frozen=True)
class ReferenceSet:
    """Photos with membership truth the attacker legitimately knows, and the box to query them on.

    Either a shadow student the attacker built itself (``is_member`` mixed), or the victim box
    queried with photos of people the attacker knows are not members (``is_member`` all False).

    Attributes
    ----------
    box : BlackBox
    images : ndarray (n, S, S, 3) uint8
    identity_ids : ndarray (n,) str
    is_member : ndarray (n,) bool, per photo (constant within an identity at identity level)
    """

    box: BlackBox
    images: np.ndarray
    identity_ids: np.ndarray
    is_member: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.images)
        if len(self.identity_ids) != n or len(self.is_member) != n:
            raise DataError("ReferenceSet images, identity_ids and is_member differ in length")


class PublicBase(abc.ABC):
    """The attacker's own copy of the public model the victim teacher was fine-tuned from.

    ``embed(images)`` maps uint8 (n, S, S, 3) crops to float (n, d) embeddings. It is an attacker
    resource (the base is public), built by the experiment layer and passed to ``fit``.
    """

    @abc.abstractmethod
    def embed(self, images: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ShadowModel:
    """A shadow student the attacker built itself, and the identities its shadow teacher trained on."""

    box: BlackBox
    members: frozenset[str]


@dataclass(frozen=True)
class MembershipScores:
    """Scores of one attack; **higher = more likely member** of the teacher's training set.

    Attributes
    ----------
    scores : ndarray (n,) float64, finite
    ids : ndarray (n,) str; image ids (INSTANCE) or identity ids (IDENTITY)
    level : Level
    attack : str
    threshold : float, the attacker's calibrated decision threshold (member if score >= it)
    n_queries : int, images this call sent to the box (before the attacker's own cache)
    """

    scores: np.ndarray
    ids: np.ndarray
    level: Level
    attack: str
    threshold: float
    n_queries: int


def group_indices(identity_ids: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    """Sorted unique identities and, for each, the indices of its photos (in input order)."""
    identity_ids = np.asarray(identity_ids).astype(str)
    names, inverse = np.unique(identity_ids, return_inverse=True)
    return names.tolist(), [np.flatnonzero(inverse == i) for i in range(len(names))]


def first_k_groups(identity_ids: np.ndarray, k: int, *, strict: bool = False) -> tuple[list[str], list[np.ndarray]]:
    """The first ``k`` photos (input order) of each identity that has at least ``k``.

    Parameters
    ----------
    identity_ids : ndarray (n,) str, the person in each photo
    k : int >= 1, photos per identity
    strict : bool
        True (scoring targets): an identity with fewer than ``k`` photos raises ``DataError``.
        False (references): such identities are left out.

    Returns
    -------
    names : list of str, sorted identities kept
    groups : list of ndarray (k,) int64, indices into ``identity_ids`` of each identity's first k photos

    Raises
    ------
    DataError
        ``strict`` and an identity has fewer than ``k`` photos.

    Examples
    --------
    >>> first_k_groups(np.array(["b", "a", "a", "b", "c"]), 2)
    (['a', 'b'], [array([1, 2]), array([0, 3])])
    """
    names, groups = group_indices(identity_ids)
    short = [(n, len(g)) for n, g in zip(names, groups) if len(g) < k]
    if short and strict:
        raise DataError(f"{len(short)} identities have fewer photos than k={k} (e.g. {short[0][0]!r} has "
                        f"{short[0][1]}); give at least k photos per identity or lower k")
    kept = [(n, g[:k]) for n, g in zip(names, groups) if len(g) >= k]
    return [n for n, _ in kept], [g for _, g in kept]


def stack_groups(groups: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Concatenated indices of ``groups`` and, per group, its rows in that concatenation.

    Examples
    --------
    >>> idx, local = stack_groups([np.array([4, 5]), np.array([0])])
    >>> idx.tolist(), [g.tolist() for g in local]
    ([4, 5, 0], [[0, 1], [2]])
    """
    idx = np.concatenate(groups) if len(groups) else np.zeros(0, np.int64)
    pos = np.cumsum([0] + [len(g) for g in groups])
    return idx, [np.arange(pos[i], pos[i + 1]) for i in range(len(groups))]


class MembershipAttack(abc.ABC):
    """Base class of every membership attack: one ``fit`` and one ``score`` signature.

    Subclasses set ``name`` (the result row name) in ``__init__``, may override ``needs`` and
    ``supports``, and implement ``_fit`` and ``_score``; fitted state ends in ``_`` and
    ``threshold_`` marks a fitted attack.

    Attributes
    ----------
    needs : frozenset of str, subset of ``RESOURCES``
        What ``fit`` must receive; ``fit`` raises ``DataError`` naming a missing one.
    """

    name: str = "attack"
    needs: frozenset[str] = frozenset({"references"})

    def supports(self, kind: OutputKind) -> bool:
        """Whether the attack can use outputs of ``kind`` (default: posterior and top-k, not labels)."""
        return kind is not OutputKind.LABEL

    @classmethod
    def for_setting(cls, params: dict[str, Any], *, level: Level, k: int,
                    output_kind: OutputKind) -> dict[str, Any] | None:
        """Constructor parameters of this attack for one level and k, or None if it does not apply.

        ``params`` are a spec's parameters (without level and k). The registry's ``plan_attacks``
        calls this; subclasses add ``level``/``k`` and narrow what the setting cannot give.
        """
        return None

    def get_params(self) -> dict[str, Any]:
        """The constructor's keyword parameters and their current values (scikit-learn's rule)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {p: getattr(self, p) for p in names}

    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(references) first")

    def _check_kind(self, kind: OutputKind, where: str) -> None:
        if not self.supports(kind):
            raise UnsupportedOutputError(f"{self.name} cannot use {kind.value} outputs ({where}); "
                                         f"reveal posteriors or choose an attack that supports {kind.value}")

    def fit(self, references: Sequence[ReferenceSet] = (), *, public_base: PublicBase | None = None,
            shadows: Sequence[ShadowModel] = (), pool: ReferenceSet | None = None) -> "MembershipAttack":
        """Calibrate on what the attacker knows; returns self.

        Parameters
        ----------
        references : sequence of ReferenceSet
            Known non-members queried on the victim box (standardisation, threshold) and/or a
            shadow student with known members (threshold, classifier). Queries go through each
            set's box only.
        public_base : PublicBase, optional; the attacker's copy of the public base model
        shadows : sequence of ShadowModel; shadow students with the identities their teachers saw
        pool : ReferenceSet, optional
            The **reference pool**: thousands of photos of many people the attacker knows are not
            members (1-2 photos each; ``is_member`` all False), with ``box`` the victim box they are
            queried on. Used by the consistency-gap attacks to fit a surrogate of each box on the
            public base; other attacks ignore it (their results do not change).

        Returns
        -------
        self

        Raises
        ------
        DataError
            A resource in ``needs`` is missing, or too little reference data (e.g. no identity
            with k photos).
        UnsupportedOutputError
            A reference or shadow box returns an output kind the attack cannot use.
        """
        given = {"references": len(references) > 0, "public_base": public_base is not None,
                 "shadows": len(shadows) > 0, "pool": pool is not None and len(pool.images) > 0}
        missing = sorted(r for r in self.needs if not given[r])
        if missing:
            raise DataError(f"{self.name} needs {' and '.join(_RESOURCE_HELP[r] for r in missing)} to fit; "
                            f"pass them to fit or choose an attack that does without")
        for box in [r.box for r in references] + [s.box for s in shadows]:
            self._check_kind(box.output_kind, "a reference or shadow box")
        if pool is not None and "pool" in self.needs:
            self._check_kind(pool.box.output_kind, "the reference pool's box")
        return self._fit(list(references), public_base=public_base, shadows=list(shadows), pool=pool)

    def score(self, box: BlackBox, images: np.ndarray, *, identity_ids: np.ndarray,
              image_ids: np.ndarray | None = None) -> MembershipScores:
        """Membership scores through ``box`` (higher = member).

        Parameters
        ----------
        box : BlackBox, the victim student's API; touched only through ``query``, ``output_kind``
            and ``input_size``
        images : ndarray (n, S, S, 3) uint8, aligned RGB crops of ``box.input_size``
        identity_ids : ndarray (n,) str, the person in each photo
        image_ids : ndarray (n,) str, optional; ids of the photos (INSTANCE level results)

        Returns
        -------
        MembershipScores
            One score per photo (INSTANCE) or per identity from its first k photos (IDENTITY).

        Raises
        ------
        NotFittedError
            Before ``fit``.
        UnsupportedOutputError
            ``box`` returns an output kind the attack cannot use (see ``supports``).
        DataError
            An identity with fewer than k photos (IDENTITY level).
        QueryBudgetExceeded
            Raised by a budgeted box; never caught.
        """
        self._check_fitted()
        self._check_kind(box.output_kind, "the scored box")
        return self._score(box, images, identity_ids=identity_ids, image_ids=image_ids)

    @abc.abstractmethod
    def _fit(self, references: list[ReferenceSet], *, public_base: PublicBase | None,
             shadows: list[ShadowModel], pool: ReferenceSet | None) -> "MembershipAttack":
        """Fit with the resources already checked against ``needs``; returns self."""

    @abc.abstractmethod
    def _score(self, box: BlackBox, images: np.ndarray, *, identity_ids: np.ndarray,
               image_ids: np.ndarray | None) -> MembershipScores:
        """Score once fitted, with the box's output kind already checked."""

"""Identity-level likelihood-ratio attack with shadow teachers (LiRA, Carlini et al., S&P 2022,
arXiv 2112.03570, Sec. IV [paper]; per identity instead of per example [reconstructed]).

The attacker fine-tunes S shadow teachers from the public base on data it controls, each target
person's photos included in a random half of them ("online") or in none ("offline"), and builds a
shadow student on each with the victim's recipe. For a target person it computes an identity
statistic (e.g. ``compactness`` of k photos) on the victim and on every shadow, fits Gaussians to
the shadows where the person was IN and OUT (per-person means, variances pooled over people, as
LiRA does with few shadows), and scores the log-likelihood ratio (online) or the standardised
distance from the OUT distribution (offline). Higher = member.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faceleaks.attacks.base import Level, MembershipAttack, MembershipScores, ReferenceSet, ShadowModel, group_indices
from faceleaks.attacks.features import IDENTITY_FEATURES, NEEDS_K2, identity_features
from faceleaks.errors import ConfigError, DataError
from faceleaks.serving.protocol import BlackBox

__all__ = ["IdentityLiRAAttack"]


def _log_normal(x: np.ndarray, mu: np.ndarray, sd: float) -> np.ndarray:
    return -0.5 * ((x - mu) / sd) ** 2 - np.log(sd)


class IdentityLiRAAttack(MembershipAttack):
    """Per-identity LiRA over shadow students.

    Parameters
    ----------
    statistic : str, an identity feature (``compactness``, ``mean_max_posterior``, ...)
    k : int, photos per identity
    online : bool, use IN and OUT shadows (True) or OUT only (False)
    """

    def __init__(self, *, statistic: str = "compactness", k: int = 5, online: bool = True) -> None:
        self.statistic = statistic
        self.k = k
        self.online = online
        if statistic not in IDENTITY_FEATURES:
            raise ConfigError(f"unknown identity statistic {statistic!r}; known: {IDENTITY_FEATURES}")
        if k < 1 or (statistic in NEEDS_K2 and k < 2):
            raise ConfigError(f"k={k} is not valid for {statistic!r}")
        self.name = f"lira-{'online' if online else 'offline'}-{statistic}@k={k}"

    def fit(self, references: Sequence[ReferenceSet] = (), *, shadows: Sequence[ShadowModel] = ()) -> "IdentityLiRAAttack":
        """Keep the shadow models (no victim query is needed to calibrate: the threshold is 0 online,
        2 standard deviations above the OUT mean offline)."""
        if len(shadows) < 2:
            raise DataError(f"IdentityLiRAAttack needs at least 2 shadow models, got {len(shadows)}")
        self.shadows_ = list(shadows)
        self.threshold_ = 0.0 if self.online else 2.0
        return self

    def _stats(self, box: BlackBox, images: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
        idx = np.concatenate(groups)
        result = box.query(images[idx])
        pos = np.cumsum([0] + [len(g) for g in groups])
        local = [np.arange(pos[i], pos[i + 1]) for i in range(len(groups))]
        return identity_features(result, local, (self.statistic,))[:, 0]

    def score(self, box: BlackBox, images: np.ndarray, *, identity_ids: np.ndarray,
              image_ids: np.ndarray | None = None) -> MembershipScores:
        self._check_fitted()
        names, groups = group_indices(identity_ids)
        short = [n for n, g in zip(names, groups) if len(g) < self.k]
        if short:
            raise DataError(f"{len(short)} identities have fewer photos than k={self.k} (e.g. {short[0]!r})")
        groups = [g[: self.k] for g in groups]
        victim = self._stats(box, images, groups)
        shadow = np.stack([self._stats(s.box, images, groups) for s in self.shadows_])  # (S, n_identities)
        is_in = np.array([[n in s.members for n in names] for s in self.shadows_])
        scores = self._llr(victim, shadow, is_in)
        n_queries = len(np.concatenate(groups))
        return MembershipScores(scores, np.array(names), Level.IDENTITY, self.name, self.threshold_, n_queries)

    def _llr(self, victim: np.ndarray, shadow: np.ndarray, is_in: np.ndarray) -> np.ndarray:
        def fit(mask: np.ndarray) -> tuple[np.ndarray, float]:
            counts = mask.sum(0)
            mu = np.where(counts > 0, (shadow * mask).sum(0) / np.maximum(counts, 1), np.nan)
            resid = (shadow - mu)[mask]
            sd = float(np.std(resid)) if resid.size > 1 else 1.0
            return np.where(np.isfinite(mu), mu, np.nanmean(mu) if np.isfinite(mu).any() else 0.0), max(sd, 1e-6)

        mu_out, sd_out = fit(~is_in)
        if not self.online:
            return (victim - mu_out) / sd_out
        mu_in, sd_in = fit(is_in)
        return _log_normal(victim, mu_in, sd_in) - _log_normal(victim, mu_out, sd_out)

"""Identity-level DP-SGD: the unit of privacy is a person with all their photos [reconstructed].

Opacus has no user-level DP (its feature request has been open since 2022), so this module is the
glue around Opacus's own pieces: ``GradSampleModule`` for per-photo gradients, ``DPOptimizer``
for clipping, Gaussian noise and averaging, ``RDPAccountant`` for epsilon. One step:

1. Poisson-sample identities: each identity independently with probability q (``IdentityPoissonBatches``);
   the batch is the photos of the sampled identities (at most ``m`` random photos each, if set);
2. per-photo gradients (Opacus), summed per identity: g_u = sum over u's photos of grad loss_i;
3. clip each g_u to L2 norm C, sum, add N(0, sigma^2 C^2) per coordinate, divide by the expected
   number of identities q N (``IdentityDPOptimizer``: steps 2's grouping, then Opacus's
   ``clip_and_accumulate`` / ``add_noise`` / ``scale_grad`` with identities as its "samples");
4. the accountant steps with (sigma, q): the sampled Gaussian mechanism over identities.

Guarantee. Training is (epsilon, delta)-DP with respect to adding or removing one identity together
with all of its photos (add/remove adjacency on the set of identities), with epsilon the RDP
accountant's at delta for the steps taken (plus the head's release, if ``noisy-means``). It assumes:
each photo belongs to exactly one identity and labels are correct (a person appearing under two
labels is two units); the sampled identities are exactly those in the batch (Poisson, with the
number of steps fixed in advance); the number of classes (member identities) and the photo
activations of the *frozen* stages are not private here (they are functions of public weights and
of the photo, computed per photo); hyper-parameters are chosen without looking at private data;
floating-point attacks on the Gaussian sampler are out of scope (Opacus's ``secure_mode`` off).
As in photo-level DP-SGD, it bounds what the *trained weights* reveal; it says nothing about
identities not in the training set.

References
----------
.. [1] McMahan et al., "Learning Differentially Private Recurrent Language Models", ICLR 2018,
   arXiv 1710.06963, Alg. 1 (user-level DP-FedAvg, per-user clipping of the user's update) [paper].
.. [2] Mironov, Talwar, Zhang, arXiv 1908.10530 (sampled Gaussian mechanism, RDP) [paper].
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from opacus.grad_sample import GradSampleModule
from opacus.optimizers import DPOptimizer
from torch import nn
from torch.utils.data import DataLoader

__all__ = ["IdentityDPOptimizer", "IdentityPoissonBatches", "IdentityPrivatizer", "identity_steps_per_epoch"]


def identity_steps_per_epoch(sample_rate: float) -> int:
    """Steps per epoch at identity sampling rate q: ``max(1, round(1 / q))`` (each identity once, in expectation)."""
    return max(1, round(1.0 / sample_rate))


class IdentityDPOptimizer(DPOptimizer):
    """Opacus's ``DPOptimizer`` with the per-photo gradients summed per identity before clipping.

    ``set_groups(groups)`` names the identity (int64, (batch,)) of each photo of the next batch;
    ``clip_and_accumulate`` then replaces every ``p.grad_sample`` (batch, ...) by its per-identity
    sums (n_identities_in_batch, ...) and lets Opacus clip each to ``max_grad_norm``, sum, add noise
    and divide by ``expected_batch_size`` (the expected number of identities per step).
    """

    def set_groups(self, groups: torch.Tensor) -> None:
        """The (batch,) int64 identity of each photo of the batch about to be stepped."""
        self._groups = torch.as_tensor(groups, dtype=torch.long)

    def clip_and_accumulate(self) -> None:
        groups = getattr(self, "_groups", None)
        if groups is None:
            raise RuntimeError("IdentityDPOptimizer.step before set_groups: the batch's identities are unknown")
        _, inverse = torch.unique(groups, return_inverse=True)
        n_groups = int(inverse.max()) + 1 if len(inverse) else 0
        for p in self.params:
            gs = self._get_flat_grad_sample(p)
            if len(gs) != len(groups):
                raise RuntimeError(f"{len(gs)} per-sample gradients for {len(groups)} photos; one backward per step")
            p.grad_sample = gs.new_zeros((n_groups, *gs.shape[1:])).index_add_(0, inverse, gs)
        self._groups = None
        super().clip_and_accumulate()


@dataclass
class IdentityPoissonBatches:
    """Per epoch ``steps`` batches, each the photos of Poisson-sampled identities (rate ``sample_rate``).

    Parameters
    ----------
    inputs : Tensor (n, ...) float32; labels : Tensor (n,) int64; groups : Tensor (n,) int64, the
        identity of each photo (for a teacher, its class)
    sample_rate : q in (0, 1]; steps : batches per epoch
    max_photos : at most this many photos per sampled identity (random, without replacement), or None
    generator : torch.Generator drawing the identities and photos
    optimizer : IdentityDPOptimizer told each batch's identities (``set_groups``) as it is yielded
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    groups: torch.Tensor
    sample_rate: float
    steps: int
    max_photos: int | None
    generator: torch.Generator
    optimizer: IdentityDPOptimizer

    def __post_init__(self) -> None:
        self.identities = torch.unique(self.groups)
        self.members = [torch.nonzero(self.groups == u).flatten() for u in self.identities.tolist()]

    def batch_indices(self) -> torch.Tensor:
        """Photo indices of one Poisson sample of identities (int64, possibly empty)."""
        drawn = torch.rand(len(self.identities), generator=self.generator) < self.sample_rate
        picks = []
        for i in torch.nonzero(drawn).flatten().tolist():
            rows = self.members[i]
            if self.max_photos is not None and len(rows) > self.max_photos:
                rows = rows[torch.randperm(len(rows), generator=self.generator)[: self.max_photos]]
            picks.append(rows)
        return torch.cat(picks) if picks else torch.zeros(0, dtype=torch.long)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for _ in range(self.steps):
            idx = self.batch_indices()
            self.optimizer.set_groups(self.groups[idx])
            yield self.inputs[idx], self.labels[idx]

    def __len__(self) -> int:
        return self.steps


@dataclass
class IdentityPrivatizer:
    """``TrainingHooks.privatize`` for identity-level DP-SGD (the class of each photo is its identity).

    ``run`` is a ``faceleaks.models.privacy.PrivacyRun`` (its accountant, noise multiplier, sampling
    rate q and config: ``max_grad_norm``, ``photos_per_identity``); ``sampling`` / ``noise`` seed the
    identity sampling and the Gaussian noise.
    """

    run: object
    sampling: torch.Generator
    noise: torch.Generator

    def __call__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader):
        inputs, labels = loader.dataset.tensors
        run, q = self.run, self.run.sample_rate
        gsm = GradSampleModule(model, loss_reduction="mean")
        n_identities = len(torch.unique(labels))
        opt = IdentityDPOptimizer(optimizer, noise_multiplier=run.noise_multiplier,
                                  max_grad_norm=run.cfg.max_grad_norm, expected_batch_size=q * n_identities,
                                  generator=self.noise)
        opt.attach_step_hook(run.accountant.get_optimizer_hook_fn(sample_rate=q))
        batches = IdentityPoissonBatches(inputs, labels, labels, q, identity_steps_per_epoch(q),
                                         run.cfg.photos_per_identity, self.sampling, opt)
        run.wrapped.append(gsm)
        return gsm, opt, batches

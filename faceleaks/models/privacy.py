"""Training defences of the dlib teacher: photo-level DP-SGD (Opacus), identity-level DP-SGD
(``identity_dp``), a head that does not bypass the guarantee, label smoothing; the accountant's epsilon.

``defended_setup`` turns a ``PrivacyConfig`` into the head to fine-tune through, the
``TrainingHooks`` of ``fit_classifier`` and a ``PrivacyRun`` whose ``record()`` goes into the
teacher's metadata (``dp_epsilon`` at ``dp_delta``, from Opacus's RDP accountant).

Per-sample gradients: dlib's ``Affine`` and our ``CosineHead`` have closed-form grad samplers
(``faceleaks.models.heads``) registered with Opacus's ``register_grad_sampler`` on import of
this module; convolutions and the linear map use Opacus's own. Per-sample gradients are the cost
of DP here. ``benchmarks/dp_utility.py --modes`` (a batch of 64 through the default 2-stage tail
and head, 1 thread, best of 5, on the shared 2-core machine at load ~8.6, 5 December) measured:
registered samplers 2.3 s, Opacus's functorch fallback for the two custom layers 2.7 s,
``force_functorch`` 2.8 s, no per-sample gradients 0.095 s; an earlier run at load ~0.8 gave
0.37 s (fallback), 0.66 s (functorch) and 0.013 s (none). So the registered samplers (the default)
are the fastest, and DP costs the 2-stage tail 20-30 x a plain step; with ``unfreeze_last_n = 1``
(the linear map alone) a batch took 0.005 s at load ~0.8. Opacus's ``ModuleValidator`` finds
nothing to fix in the tail (no BatchNorm: dlib's ``affine_`` layers are fixed per-channel scales
and shifts) [measured].

References
----------
.. [1] Abadi et al., "Deep Learning with Differential Privacy", CCS 2016, arXiv 1607.00133, Alg. 1 [paper].
.. [2] Mironov, Talwar, Zhang, "Renyi Differential Privacy of the Sampled Gaussian Mechanism",
   arXiv 1908.10530 (Opacus's RDP accountant) [paper].
.. [3] Yousefpour et al., "Opacus: User-Friendly Differential Privacy Library in PyTorch", arXiv 2109.12298 [paper].
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from opacus import PrivacyEngine
from opacus.accountants import RDPAccountant
from opacus.data_loader import DPDataLoader
from opacus.grad_sample import register_grad_sampler
from torch import nn
from torch.utils.data import DataLoader

from faceleaks.config.privacy import PrivacyConfig
from faceleaks.errors import ConfigError
from faceleaks.models.dlib_net import Affine
from faceleaks.models.heads import CosineHead, affine_grad_sample, cosine_head_grad_sample, random_unit_rows
from faceleaks.models.identity_dp import IdentityPrivatizer, identity_steps_per_epoch
from faceleaks.models.training import TrainingHooks, predict_batches

__all__ = ["PrivacyRun", "defended_setup", "noise_for_epsilon", "private_head", "PhotoPrivatizer", "privacy_generators"]

register_grad_sampler(Affine)(affine_grad_sample)
register_grad_sampler(CosineHead)(cosine_head_grad_sample)
# The tail's inputs are the frozen stages' activations, which need no gradient: torch warns about
# that once per run for Opacus's backward hooks. Opacus's secure RNG is off by design (documented in
# ``identity_dp``'s guarantee). Neither is a failure, so neither reaches the CLI.
warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed with respect to "
                        "module outputs", category=UserWarning)
warnings.filterwarnings("ignore", message="Secure RNG turned off", category=UserWarning)

#: Default identity sampling rate q of identity-level DP.
DEFAULT_IDENTITY_RATE = 0.25


@dataclass
class PrivacyRun:
    """The accountant of one private training and what it was set to (filled as training runs).

    ``accountant`` is Opacus's ``RDPAccountant``; its history holds the head's release (if any) and
    one entry per DP-SGD step. ``wrapped`` are the ``GradSampleModule`` s to close after training.
    """

    cfg: PrivacyConfig
    accountant: RDPAccountant
    noise_multiplier: float
    sample_rate: float
    steps: int
    wrapped: list = field(default_factory=list)

    def epsilon(self) -> float:
        """The accountant's epsilon at ``cfg.delta`` for everything released so far."""
        return float(self.accountant.get_epsilon(delta=self.cfg.delta)) if self.accountant.history else 0.0

    def close(self) -> None:
        """Remove Opacus's hooks and per-sample gradient attributes from the trained modules."""
        for gsm in self.wrapped:
            gsm._close()
        self.wrapped.clear()

    def record(self) -> dict:
        """The teacher-metadata entries: mode, epsilon at delta, noise multiplier, sampling rate, steps, C."""
        return {"dp_mode": self.cfg.mode, "dp_epsilon": self.epsilon(), "dp_delta": self.cfg.delta,
                "dp_noise_multiplier": self.noise_multiplier, "dp_sample_rate": self.sample_rate,
                "dp_steps": int(sum(n for _, _, n in self.accountant.history)),
                "dp_max_grad_norm": self.cfg.max_grad_norm, "dp_head_init": self.cfg.head_init}


def noise_for_epsilon(target_epsilon: float, delta: float, sample_rate: float, steps: int, *,
                      prior: list[tuple[float, float, int]] = (), tolerance: float = 0.01) -> float:
    """The smallest noise multiplier (to ``tolerance`` in epsilon) whose RDP epsilon at ``delta`` is <= the target.

    Bisection on Opacus's ``RDPAccountant`` with history ``prior + [(sigma, sample_rate, steps)]``
    (as ``opacus.accountants.utils.get_noise_multiplier``, which cannot take the head's prior release).

    Raises
    ------
    ConfigError
        The prior releases alone already spend ``target_epsilon``.
    """
    acc = RDPAccountant()

    def eps(sigma: float) -> float:
        acc.history = [*prior, (sigma, sample_rate, steps)]
        return float(acc.get_epsilon(delta=delta))

    if prior and eps(1e6) >= target_epsilon:
        raise ConfigError(f"target_epsilon={target_epsilon} is spent by the head's noisy class means alone; "
                          "raise head_noise_multiplier, use head_init='random' or a larger target_epsilon")
    low, high = 0.0, 10.0
    while eps(high) > target_epsilon:
        low, high = high, 2 * high
    while eps(high) < target_epsilon - tolerance and high - low > 1e-6:
        mid = (low + high) / 2
        low, high = (mid, high) if eps(mid) > target_epsilon else (low, mid)
    return high


def privacy_generators(seed: int) -> tuple[torch.Generator, torch.Generator]:
    """Two independent torch generators (sampling, noise) derived from ``seed`` (NumPy SeedSequence)."""
    a, b = np.random.SeedSequence([int(seed), 14]).generate_state(2)
    return torch.Generator().manual_seed(int(a)), torch.Generator().manual_seed(int(b))


def private_head(tail: nn.Module, h: torch.Tensor, labels: np.ndarray, n_classes: int, cfg: PrivacyConfig,
                 generator: torch.Generator, accountant: RDPAccountant) -> CosineHead:
    """The cosine head DP training starts from, without spending privacy it does not account for.

    ``random``: unit rows from ``generator`` (data-independent). ``noisy-means``: per class the sum of
    the unit-normalised base descriptors of its photos (photo mode: one photo moves one row by at most
    1; identity mode: each row is clipped to norm 1, so one identity moves one row by at most 1), plus
    N(0, (``head_noise_multiplier``)^2) per coordinate, i.e. a Gaussian mechanism of L2 sensitivity 1;
    it is charged to ``accountant`` as one step at sampling rate 1 (its RDP is alpha / (2 sigma^2)).
    The number of classes (member identities) is taken as public [reconstructed].
    """
    if cfg.head_init == "random":
        return CosineHead(random_unit_rows(n_classes, 128, generator))
    with torch.no_grad():
        emb = nn.functional.normalize(predict_batches(tail.eval(), h), dim=1)
    sums = torch.zeros(n_classes, emb.shape[1]).index_add_(0, torch.as_tensor(labels, dtype=torch.long), emb)
    if cfg.mode == "identity":
        sums = sums / sums.norm(dim=1, keepdim=True).clamp_min(1.0)
    noise = torch.randn(sums.shape, generator=generator) * cfg.head_noise_multiplier
    accountant.step(noise_multiplier=cfg.head_noise_multiplier, sample_rate=1.0)
    return CosineHead(sums + noise)


@dataclass
class PhotoPrivatizer:
    """``TrainingHooks.privatize`` for photo-level DP-SGD: Opacus's ``make_private`` with Poisson sampling.

    The Poisson loader is built here (``DPDataLoader`` over the caller's dataset, sampling rate
    ``1 / steps_per_epoch``, seeded by ``sampling``) so training is reproducible; ``make_private`` is
    then told not to rebuild it (``poisson_sampling=False``). Its accountant is ``run.accountant``.
    """

    run: PrivacyRun
    batch_size: int
    sampling: torch.Generator
    noise: torch.Generator

    def __call__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader):
        engine = PrivacyEngine(accountant="rdp")
        engine.accountant = self.run.accountant
        poisson = DPDataLoader.from_data_loader(DataLoader(loader.dataset, batch_size=self.batch_size),
                                                generator=self.sampling)
        model, optimizer, poisson = engine.make_private(
            module=model, optimizer=optimizer, data_loader=poisson, noise_multiplier=self.run.noise_multiplier,
            max_grad_norm=self.run.cfg.max_grad_norm, poisson_sampling=False, noise_generator=self.noise)
        self.run.wrapped.append(model)
        return model, optimizer, poisson


def _schedule(cfg: PrivacyConfig, n_photos: int, batch_size: int) -> tuple[float, int, int]:
    """(sampling rate, steps per epoch, photo batch size) of a private training."""
    if cfg.mode == "identity":
        q = cfg.sample_rate or DEFAULT_IDENTITY_RATE
        return q, identity_steps_per_epoch(q), 0
    bs = max(1, round(cfg.sample_rate * n_photos)) if cfg.sample_rate else batch_size
    steps = math.ceil(n_photos / bs)
    return 1.0 / steps, steps, bs


def defended_setup(cfg: PrivacyConfig, tail: nn.Module, h: torch.Tensor, labels: np.ndarray, n_classes: int, *,
                   batch_size: int, epochs: int, seed: int, hooks: TrainingHooks,
                   imprint) -> tuple[CosineHead, TrainingHooks, PrivacyRun | None]:
    """The head, training hooks and privacy run of a teacher trained with the defences ``cfg``.

    Parameters
    ----------
    cfg : PrivacyConfig (``TeacherConfig.privacy``)
    tail, h, labels, n_classes : the tail to fine-tune, its input activations (n, ...) float32, the
        photos' classes (n,) int64 (class = member identity) and their number
    batch_size, epochs : the recipe's (photo mode's default batch; steps = epochs x steps per epoch)
    seed : seeds the Poisson sampling, the noise and a random head (``privacy_generators``)
    hooks : the caller's hooks; a custom optimiser or privatize hook cannot be combined with DP
    imprint : callable ``(tail, h, labels, n_classes) -> CosineHead``, the non-private head
        (imprinted from member photos), used when DP is off

    Returns
    -------
    head : CosineHead; hooks : TrainingHooks; run : PrivacyRun or None (no DP)

    Raises
    ------
    ConfigError
        DP together with a custom ``make_optimizer`` / ``privatize`` hook; an unreachable target epsilon.
    """
    tag = "+".join(t for t in (hooks.tag, cfg.tag) if t and t != "none")
    hooks = replace(hooks, label_smoothing=cfg.label_smoothing, tag=tag) if cfg.label_smoothing else hooks
    if not cfg.is_private:
        return imprint(tail, h, labels, n_classes), hooks, None
    if hooks.privatize is not None or hooks.make_optimizer is not None:
        raise ConfigError(f"teacher.privacy ({cfg.tag}) cannot be combined with custom privatize/optimizer "
                          f"hooks ({hooks.tag}); use one or the other")
    q, per_epoch, bs = _schedule(cfg, len(h), batch_size)
    sampling, noise = privacy_generators(seed)
    run = PrivacyRun(cfg, RDPAccountant(), 0.0, q, epochs * per_epoch)
    head = private_head(tail, h, labels, n_classes, cfg, noise, run.accountant)
    run.noise_multiplier = cfg.noise_multiplier or noise_for_epsilon(
        cfg.target_epsilon, cfg.delta, q, run.steps, prior=list(run.accountant.history))
    privatize = IdentityPrivatizer(run, sampling, noise) if cfg.mode == "identity" \
        else PhotoPrivatizer(run, bs, sampling, noise)
    return head, replace(hooks, privatize=privatize, tag=tag), run

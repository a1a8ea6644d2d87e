"""DP-SGD pieces on tiny tensors: grad samplers against autograd, per-identity clipping, the accountant's
epsilon pinned against the sampled Gaussian mechanism's RDP computed here, the head and the noise search."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from opacus.accountants import RDPAccountant
from opacus.grad_sample import GradSampleModule
from torch import nn

from faceleaks.config import PrivacyConfig
from faceleaks.errors import ConfigError
from faceleaks.models.dlib_net import Affine
from faceleaks.models.heads import CosineHead
from faceleaks.models.identity_dp import IdentityDPOptimizer, IdentityPoissonBatches
from faceleaks.models.privacy import noise_for_epsilon, private_head

INT_ORDERS = list(range(2, 64))


def _autograd_per_sample(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """Slow reference: one backward per sample; (n, *p.shape) per parameter."""
    rows = []
    for i in range(len(x)):
        model.zero_grad()
        nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        rows.append([p.grad.clone() for p in model.parameters()])
    return [torch.stack(g) for g in zip(*rows)]


@pytest.mark.parametrize("model_fn,shape", [
    (lambda: nn.Sequential(nn.Flatten(), nn.Linear(12, 6), CosineHead(torch.randn(5, 6), scale=7.0)), (3, 2, 2)),
    (lambda: nn.Sequential(Affine(3), nn.Flatten(), nn.Linear(12, 5)), (3, 2, 2)),
])
def test_registered_grad_samplers_match_autograd(model_fn, shape):
    import faceleaks.models.privacy  # noqa: F401  (registers the samplers)
    torch.manual_seed(0)
    model = model_fn()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))  # move Affine off (1, 0) and the head off its init
    x, y = torch.randn(7, *shape), torch.randint(0, 5, (7,))
    want = _autograd_per_sample(model, x, y)
    gsm = GradSampleModule(model.train(), loss_reduction="mean")
    assert CosineHead in gsm.GRAD_SAMPLERS and Affine in gsm.GRAD_SAMPLERS  # not Opacus's functorch fallback
    nn.functional.cross_entropy(gsm(x), y).backward()
    for p, w in zip(model.parameters(), want):
        torch.testing.assert_close(p.grad_sample, w, rtol=1e-4, atol=1e-5)
    gsm._close()


def _identity_step(groups: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, clip: float) -> torch.Tensor:
    """The update direction (before the learning rate) of one noise-free identity-level step, flattened."""
    torch.manual_seed(1)
    model = nn.Linear(4, 3)
    gsm = GradSampleModule(model.train(), loss_reduction="mean")
    opt = IdentityDPOptimizer(torch.optim.SGD(model.parameters(), lr=1.0), noise_multiplier=0.0,
                              max_grad_norm=clip, expected_batch_size=1)
    opt.zero_grad()
    nn.functional.cross_entropy(gsm(x), y).backward()
    opt.set_groups(groups)
    opt.pre_step()
    out = torch.cat([p.grad.flatten() for p in model.parameters()])
    gsm._close()
    return out


def test_one_identity_with_many_photos_moves_the_update_by_at_most_c():
    g = torch.Generator().manual_seed(3)
    # identity 0: 60 photos with large, aligned gradients; identities 1..3: one photo each
    x = torch.cat([10 * torch.ones(60, 4) + torch.randn(60, 4, generator=g), torch.randn(3, 4, generator=g)])
    y = torch.cat([torch.zeros(60, dtype=torch.long), torch.tensor([1, 2, 0])])
    groups = torch.cat([torch.zeros(60, dtype=torch.long), torch.tensor([1, 2, 3])])
    clip = 0.5
    with_big = _identity_step(groups, x, y, clip=clip)
    without = _identity_step(groups[60:], x[60:], y[60:], clip=clip)
    assert (with_big - without).norm() <= clip * (1 + 1e-5)
    assert with_big.norm() <= 4 * clip * (1 + 1e-5)  # 4 identities, each clipped to C
    # per-photo clipping (every photo its own group) would let the same person move it by far more than C
    per_photo = _identity_step(torch.arange(63), x, y, clip=clip)
    per_photo_without = _identity_step(torch.arange(3), x[60:], y[60:], clip=clip)
    assert (per_photo - per_photo_without).norm() > 10 * clip


def test_identity_sums_are_the_slow_loop():
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(9, 4, generator=g), torch.randint(0, 3, (9,), generator=g)
    groups = torch.tensor([5, 5, 2, 9, 2, 5, 9, 9, 2])
    clip = 0.3
    got = _identity_step(groups, x, y, clip=clip)
    torch.manual_seed(1)
    model = nn.Linear(4, 3)  # same init as in _identity_step
    total = torch.zeros_like(got)
    for u in groups.unique():
        model.zero_grad()
        nn.functional.cross_entropy(model(x[groups == u]), y[groups == u], reduction="sum").backward()
        flat = torch.cat([p.grad.flatten() for p in model.parameters()])
        total += flat * min(1.0, clip / (float(flat.norm()) + 1e-6))
    torch.testing.assert_close(got, total, rtol=1e-5, atol=1e-6)


def _sgm_epsilon(sigma: float, q: float, steps: int, delta: float) -> float:
    """Independent: integer-order RDP of the sampled Gaussian mechanism (Mironov, Talwar, Zhang 2019,
    arXiv 1908.10530, Sec. 3.3: log sum_k C(a,k) (1-q)^(a-k) q^k exp((k^2-k)/(2 sigma^2)) / (a-1)),
    converted with Balle et al. 2020 (arXiv 1905.09982, Theorem 21)."""
    best = math.inf
    for a in INT_ORDERS:
        terms = [math.lgamma(a + 1) - math.lgamma(k + 1) - math.lgamma(a - k + 1) + (a - k) * math.log1p(-q)
                 + (k * math.log(q) if k else 0.0) + (k * k - k) / (2 * sigma**2) for k in range(a + 1)]
        m = max(terms)
        rdp = (m + math.log(sum(math.exp(t - m) for t in terms))) / (a - 1)
        best = min(best, steps * rdp - (math.log(delta) + math.log(a)) / (a - 1) + math.log((a - 1) / a))
    return best


@pytest.mark.parametrize("sigma,q,steps", [(1.0, 0.05, 200), (1.5, 0.1, 300), (3.0, 0.25, 50)])
def test_accountant_epsilon_is_the_sampled_gaussian_rdp(sigma, q, steps):
    acc = RDPAccountant()
    for _ in range(steps):
        acc.step(noise_multiplier=sigma, sample_rate=q)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the optimum must be an interior order (else the bound is not tight)
        got = acc.get_epsilon(delta=1e-5, alphas=INT_ORDERS)
    assert got == pytest.approx(_sgm_epsilon(sigma, q, steps, 1e-5), rel=1e-6)


def test_identity_batches_are_whole_identities_and_poisson():
    labels = torch.arange(40).repeat_interleave(5)  # 40 identities, 5 photos each
    opt = type("Spy", (), {"set_groups": lambda self, g: setattr(self, "groups", g)})()
    batches = IdentityPoissonBatches(torch.randn(200, 2), labels, labels, 0.25, 4, 3, torch.Generator().manual_seed(0), opt)
    sizes = []
    for _ in range(50):
        for xb, yb in batches:
            counts = torch.bincount(yb, minlength=40)
            assert set(counts.tolist()) <= {0, 3} and torch.equal(opt.groups, yb)  # whole identities, capped at 3
            sizes.append(int((counts > 0).sum()))
    assert abs(np.mean(sizes) - 10) < 1.0  # q * 40 identities per step on average


def test_noise_for_epsilon_reaches_the_target():
    for target in (1.0, 4.0, 10.0):
        sigma = noise_for_epsilon(target, 1e-5, 0.25, 100)
        acc = RDPAccountant()
        acc.history = [(sigma, 0.25, 100)]
        assert target - 0.02 <= acc.get_epsilon(delta=1e-5) <= target
    with pytest.raises(ConfigError, match="head"):
        noise_for_epsilon(0.5, 1e-5, 0.25, 100, prior=[(0.5, 1.0, 1)])


def test_private_head_uses_no_unaccounted_data():
    tail = nn.Sequential(nn.Flatten(), nn.Linear(8, 128))
    labels = np.repeat(np.arange(4), 3)
    heads = []
    for h in (torch.randn(12, 8), torch.randn(12, 8)):  # two different private datasets
        acc = RDPAccountant()
        head = private_head(tail, h, labels, 4, PrivacyConfig(mode="photo", noise_multiplier=1.0),
                            torch.Generator().manual_seed(0), acc)
        heads.append(head.weight.detach())
        assert acc.history == []  # random rows spend nothing
    torch.testing.assert_close(heads[0], heads[1])  # ... because they ignore the data
    acc = RDPAccountant()
    cfg = PrivacyConfig(mode="identity", noise_multiplier=1.0, head_init="noisy-means", head_noise_multiplier=3.0)
    private_head(tail, torch.randn(12, 8), labels, 4, cfg, torch.Generator().manual_seed(0), acc)
    assert acc.history == [(3.0, 1.0, 1)]  # the Gaussian mechanism is charged

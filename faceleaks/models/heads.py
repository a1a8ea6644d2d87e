"""The teacher's training head (cosine softmax) and the per-sample gradients of its custom layers.

``CosineHead`` is the classification head a dlib teacher is fine-tuned through; its weight is kept
with the teacher (``Teacher.head``: the owner's closed-set identification), while students are
built on the teacher's embedding. The ``*_grad_sample`` functions give the per-sample
gradients of ``CosineHead`` and of dlib's ``Affine`` layer in closed form, in the signature of
Opacus's grad samplers (``faceleaks.models.privacy`` registers them); they are plain torch.
"""

from __future__ import annotations

import torch
from torch import nn

from faceleaks.models.dlib_net import Affine

__all__ = ["CosineHead", "cosine_head_grad_sample", "affine_grad_sample", "random_unit_rows"]


class CosineHead(nn.Module):
    """Logits = ``scale`` x cosine(descriptor, class weight); weights imprinted from class means.

    Imprinting (Qi et al. 2018, arXiv 1712.07136 [paper]) starts fine-tuning from a classifier
    that already works on the strong base features, so gradients stay small and the teacher
    keeps its general face-verification quality [reconstructed choice].

    Parameters
    ----------
    class_means : Tensor (n_classes, d) float32, the initial class directions (normalised here)
    scale : float, the logit scale (inverse temperature)
    """

    def __init__(self, class_means: torch.Tensor, scale: float = 16.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(nn.functional.normalize(class_means, dim=1).clone())
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * nn.functional.normalize(x, dim=1) @ nn.functional.normalize(self.weight, dim=1).T


def random_unit_rows(n_classes: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """(n_classes, d) float32 rows drawn uniformly on the unit sphere (a data-independent head)."""
    return nn.functional.normalize(torch.randn(n_classes, d, generator=generator), dim=1)


def cosine_head_grad_sample(layer: CosineHead, activations: list[torch.Tensor],
                            backprops: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
    """Per-sample gradients of ``CosineHead.weight`` (Opacus grad-sampler signature).

    Parameters
    ----------
    layer : CosineHead with weight W (n_classes, d), rows w_k of norm r_k, v_k = w_k / r_k
    activations : [x], x (batch, d) float32, the head's input
    backprops : (batch, n_classes) float32, d loss_i / d logits_i (already per sample)

    Returns
    -------
    dict ``{layer.weight: (batch, n_classes, d)}``: for sample i,
    ``scale * g_ik * (u_i - (v_k . u_i) v_k) / r_k`` with ``u_i = x_i / |x_i|`` (the chain rule
    through both normalisations; checked against autograd in the tests) [reconstructed].
    """
    x = activations[0].to(backprops.dtype)
    u = nn.functional.normalize(x, dim=1)
    r = layer.weight.norm(dim=1).clamp_min(1e-12)
    v = layer.weight / r[:, None]
    cos = u @ v.T  # (batch, n_classes)
    gs = backprops[:, :, None] * (u[:, None, :] - cos[:, :, None] * v[None]) / r[None, :, None]
    return {layer.weight: layer.scale * gs}


def affine_grad_sample(layer: Affine, activations: list[torch.Tensor],
                       backprops: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
    """Per-sample gradients of dlib's ``Affine`` (y = gamma[c] x + beta[c]) in Opacus's signature.

    ``activations[0]`` and ``backprops`` are (batch, C, H, W) float32; returns ``{gamma: (batch, C),
    beta: (batch, C)}``, the sums over space of ``x * dy`` and ``dy``.
    """
    x = activations[0].to(backprops.dtype)
    out = {}
    if layer.gamma.requires_grad:
        out[layer.gamma] = torch.einsum("nchw,nchw->nc", backprops, x)
    if layer.beta.requires_grad:
        out[layer.beta] = backprops.sum(dim=(2, 3))
    return out

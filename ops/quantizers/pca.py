"""PCA as a frozen linear encoder/decoder pair: what a training-free tokenizer puts where an autoencoder's MLPs go.

The projection ``z = C (x - mean)`` and the reconstruction ``x_hat = C^T z + mean`` are two `nn.Linear` layers
whose weights `fit_pca` sets and no optimizer touches, so a checkpoint stores them like any other weights and
``Tokenizer.run`` measures the reconstruction error in the embedding space, comparable with an autoencoder's.
No whitening: the projection only rotates and truncates, so k-means distances in the kept subspace are the
embedding space's own.
"""

from __future__ import annotations

import torch
from torch import nn

CHUNK = 65536  # rows per float64 block when accumulating the covariance


def pca_layers(input_dim: int, n_components: int) -> tuple[nn.Linear, nn.Linear]:
    """Projection (input_dim -> n_components) and reconstruction (n_components -> input_dim), frozen; `fit_pca`
    sets them."""
    if not 0 < n_components <= input_dim:
        raise ValueError(f"PCA needs 0 < n_components <= input_dim, got {n_components} of {input_dim}")
    project, reconstruct = nn.Linear(input_dim, n_components), nn.Linear(n_components, input_dim)
    for layer in (project, reconstruct):
        layer.requires_grad_(False)
    return project, reconstruct


@torch.no_grad()
def fit_pca(project: nn.Linear, reconstruct: nn.Linear, x: torch.Tensor) -> None:
    """Set the pair from `principal_components` of ``x`` (n, input_dim)."""
    mean, components = principal_components(x, project.out_features)  # (input_dim,), (n_components, input_dim)
    project.weight.copy_(components)
    project.bias.copy_(-(components @ mean))  # C x - C mean = C (x - mean)
    reconstruct.weight.copy_(components.T)
    reconstruct.bias.copy_(mean)


@torch.no_grad()
def principal_components(x: torch.Tensor, n_components: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (dim,), components (n_components, dim)) of ``x`` (n, dim), in float64.

    Components are the covariance's top eigenvectors, largest variance first, each signed so that its
    largest-magnitude entry is positive: an eigenvector's sign is arbitrary, and this makes the projection a
    function of the data alone, not of the linear-algebra library.
    """
    chunks = x.detach().split(CHUNK)  # float64 copies of a chunk at a time, not of the catalogue
    mean = torch.stack([chunk.double().sum(0) for chunk in chunks]).sum(0) / len(x)  # (dim,)
    covariance = torch.zeros(len(mean), len(mean), dtype=torch.float64, device=mean.device)  # (dim, dim)
    for chunk in chunks:
        centred = chunk.double() - mean
        covariance += centred.T @ centred
    covariance /= max(len(x) - 1, 1)
    _, vectors = torch.linalg.eigh(covariance)  # ascending eigenvalues; eigenvectors in columns
    components = vectors[:, -n_components:].flip(1).T  # (n_components, dim), largest variance first
    peaks = components.abs().argmax(1, keepdim=True)  # (n_components, 1)
    components = components * components.gather(1, peaks).sign()
    return mean, components

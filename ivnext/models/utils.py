"""Tensor helpers shared by models: patchify / unpatchify and token gathering."""
from typing import Tuple

import torch
from einops import rearrange


def patchify(x: torch.Tensor, patch_size: int, tubelet_size: int = 1) -> torch.Tensor:
    """Cut a clip into flattened patches in token order.

    Args:
        x: Clip (B, C, T, H, W).
        patch_size: Spatial patch side p.
        tubelet_size: Temporal patch length u.

    Returns:
        Tensor: (B, N, u*p*p*C) with N = T/u * H/p * W/p in (t, h, w) raster order and each patch vector in
        (t, p_h, p_w, c) order, the layout of the released PatchEmbed's pre-norm.
    """
    b, c, t, h, w = x.shape
    if t % tubelet_size or h % patch_size or w % patch_size:
        raise ValueError(f'clip shape (T={t}, H={h}, W={w}) must be divisible by tubelet_size={tubelet_size} '
                         f'and patch_size={patch_size}; resize or crop the clip.')
    return rearrange(x, 'b c (t u) (h p) (w q) -> b (t h w) (u p q c)', u=tubelet_size, p=patch_size, q=patch_size)


def unpatchify(patches: torch.Tensor, grid: Tuple[int, int, int], patch_size: int,
               tubelet_size: int = 1) -> torch.Tensor:
    """Inverse of :func:`patchify`.

    Args:
        patches: (B, N, u*p*p*C).
        grid: Token grid (T', H', W') with N = T'*H'*W'.
        patch_size: Spatial patch side p.
        tubelet_size: Temporal patch length u.

    Returns:
        Tensor: Clip (B, C, T'*u, H'*p, W'*p).
    """
    t, h, w = grid
    return rearrange(patches, 'b (t h w) (u p q c) -> b c (t u) (h p) (w q)', t=t, h=h, w=w, u=tubelet_size,
                     p=patch_size, q=patch_size)


def gather_tokens(tokens: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Select tokens by index along the sequence axis.

    Args:
        tokens: (B, N, C).
        index: (B, K) long.

    Returns:
        Tensor: (B, K, C).
    """
    return torch.gather(tokens, 1, index.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


def mask_to_index(mask: torch.Tensor, masked: bool = False) -> torch.Tensor:
    """Indices of visible (or masked) tokens, in raster order.

    Args:
        mask: (B, N) bool, True = masked. Every row must have the same count of True.
        masked: Return indices of masked tokens instead of visible ones.

    Returns:
        Tensor: (B, K) long.
    """
    keep = mask if masked else ~mask
    if keep.shape[0] == 0:
        return keep.new_zeros((0, 0), dtype=torch.long)
    # One host read for the check and the count (a device sync on GPU).
    low, high = torch.stack(keep.sum(1).aminmax()).tolist()
    if low != high:
        raise ValueError(f'mask must mask the same number of tokens in every sample, got counts '
                         f'{keep.sum(1).tolist()}')
    k = low
    # Stable sort puts selected tokens first while keeping raster order.
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
    return order[:, :k]

"""Tensor helpers shared by models: patchify / unpatchify, token gathering and sync-free device checks."""
import contextlib
from typing import ContextManager, Tuple

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


def full_precision(device: torch.device) -> ContextManager:
    """Context that turns autocast off on ``device`` (a no-op where autocast does not exist, e.g. ``meta``)."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


def assert_on_device(condition: torch.Tensor, message: str) -> None:
    """Check a one-element bool tensor without a host-device sync.

    On CPU the check is an ordinary ``ValueError``. On an accelerator it is an asynchronous device assertion
    (``torch._assert_async``): the step never waits for it, and a failure surfaces at a later kernel launch with
    ``message`` (and leaves that process's CUDA context unusable, as any device-side assert does).
    """
    if condition.device.type == 'cpu':
        if not bool(condition):
            raise ValueError(message)
    else:
        torch._assert_async(condition, message)

"""Tensor helpers shared by models: patchify / unpatchify, token gathering and sync-free device checks."""
import contextlib
from typing import ContextManager, Optional, Tuple

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


def mask_to_index(mask: torch.Tensor, masked: bool = False, count: Optional[int] = None) -> torch.Tensor:
    """Indices of visible (or masked) tokens, in raster order.

    Args:
        mask: (B, N) bool, True = masked. Every row must have the same count of True.
        masked: Return indices of masked tokens instead of visible ones.
        count: Selected tokens per sample when the caller knows it (maskers do: ``BaseMasker.sample``); it is then
            checked on the device and the step needs no host read. Without it the count is read back (one sync).

    Returns:
        Tensor: (B, K) long.
    """
    keep = mask if masked else ~mask
    if keep.shape[0] == 0:
        return keep.new_zeros((0, 0 if count is None else count), dtype=torch.long)
    per_sample = keep.sum(1)
    what = 'masked' if masked else 'visible'
    if count is None:
        # One host read for the check and the count (a device sync on GPU).
        low, high = torch.stack(per_sample.aminmax()).tolist()
        if low != high:
            raise ValueError(f'mask must mask the same number of tokens in every sample, got {what} counts '
                             f'{per_sample.tolist()}')
        count = low
    else:
        assert_on_device(per_sample.eq(count).all(),
                         f'every mask row must hold {count} {what} tokens: use the same mask (and the count its '
                         'masker reported) for the encoder, the predictor and the targets')
    # Stable sort puts selected tokens first while keeping raster order.
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
    return order[:, :count]

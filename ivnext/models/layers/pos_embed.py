"""Fixed sin-cos position embeddings over (T, H, W), their interpolation, and resizing a loaded table."""
from typing import Tuple

import torch
import torch.nn.functional as F


def sincos_1d(embed_dims: int, positions: torch.Tensor) -> torch.Tensor:
    """1D sin-cos embedding (MAE convention: sines then cosines).

    Args:
        embed_dims: Output width, even.
        positions: (M,) float positions.

    Returns:
        Tensor: (M, embed_dims).
    """
    if embed_dims % 2:
        raise ValueError(f'embed_dims must be even for a sin-cos embedding, got {embed_dims}')
    omega = torch.arange(embed_dims // 2, dtype=torch.float64) / (embed_dims / 2.0)
    omega = 1.0 / 10000**omega
    out = positions.to(torch.float64)[:, None] * omega[None]
    return torch.cat([out.sin(), out.cos()], dim=1).float()


def sincos_3d(embed_dims: int, grid: Tuple[int, int, int]) -> torch.Tensor:
    """3D sin-cos embedding: a quarter of the channels encode time, the rest (w, h) space.

    The layout follows the released InternVideo-Next encoder: ``[temporal (C/4) | w (3C/8) | h (3C/8)]``.

    Args:
        embed_dims: Width C, divisible by 16.
        grid: Token grid (T, H, W).

    Returns:
        Tensor: (T*H*W, C) in (t, h, w) raster order.
    """
    if embed_dims % 16:
        raise ValueError(f'embed_dims must be divisible by 16 for the 3D sin-cos embedding, got {embed_dims}')
    t, h, w = grid
    dims_t = embed_dims // 4
    dims_s = embed_dims - dims_t
    emb_t = sincos_1d(dims_t, torch.arange(t, dtype=torch.float64))  # (T, Ct)
    emb_w = sincos_1d(dims_s // 2, torch.arange(w, dtype=torch.float64))  # (W, Cs/2)
    emb_h = sincos_1d(dims_s // 2, torch.arange(h, dtype=torch.float64))  # (H, Cs/2)
    spatial = torch.cat([emb_w[None, :, :].expand(h, w, -1), emb_h[:, None, :].expand(h, w, -1)], dim=-1)
    spatial = spatial.reshape(1, h * w, dims_s).expand(t, -1, -1)
    temporal = emb_t[:, None, :].expand(-1, h * w, -1)
    return torch.cat([temporal, spatial], dim=-1).reshape(t * h * w, embed_dims)


def interpolate_pos_embed(pos_embed: torch.Tensor, src_grid: Tuple[int, int, int],
                          dst_grid: Tuple[int, int, int]) -> torch.Tensor:
    """Resample a patch position table to another (T, H, W) grid.

    Identity (the same tensor) when the grids are equal; otherwise trilinear interpolation of the table
    seen as a (C, T, H, W) volume, which keeps loaded (possibly trained) values rather than recomputing them.

    Args:
        pos_embed: (N_src, C) or (1, N_src, C) patch positions (no CLS rows).
        src_grid: Grid the table was built for.
        dst_grid: Grid to produce.

    Returns:
        Tensor: Same rank as the input, with N_dst rows.
    """
    if tuple(src_grid) == tuple(dst_grid):
        return pos_embed
    squeeze = pos_embed.dim() == 2
    table = pos_embed if squeeze else pos_embed[0]
    n, c = table.shape
    if n != src_grid[0] * src_grid[1] * src_grid[2]:
        raise ValueError(f'position table has {n} rows but src_grid {tuple(src_grid)} needs '
                         f'{src_grid[0] * src_grid[1] * src_grid[2]}')
    volume = table.reshape(*src_grid, c).permute(3, 0, 1, 2).unsqueeze(0).float()
    volume = F.interpolate(volume, size=tuple(dst_grid), mode='trilinear', align_corners=False)
    out = volume[0].permute(1, 2, 3, 0).reshape(-1, c).to(table.dtype)
    return out if squeeze else out.unsqueeze(0)


def resize_pos_table(table: torch.Tensor, num_cls: int, dst_grid: Tuple[int, int, int]) -> torch.Tensor:
    """Resize a loaded (1, num_cls + N_src, C) position table (CLS rows first) to the patch grid ``dst_grid``.

    The source grid is read from the row count: a square spatial side, and the frame count from what remains,
    taking the grid that keeps either the spatial side or the frame count of ``dst_grid`` (e.g. a 16-frame table
    for a 32-frame encoder, or a 224 px table for 448 px). The CLS rows are kept as they are.

    Args:
        table: (1, num_cls + N_src, C) loaded table.
        num_cls: Leading rows that are not patches.
        dst_grid: Target patch grid (T, H, W).

    Returns:
        Tensor: (1, num_cls + T*H*W, C); the same tensor when it already has T*H*W patch rows.

    Raises:
        ValueError: No (T, S, S) grid with the table's row count keeps the side or frame count of ``dst_grid``.
    """
    n_src = table.shape[1] - num_cls
    t_dst, h_dst, w_dst = dst_grid
    if n_src == t_dst * h_dst * w_dst:
        return table
    for t_src in range(1, n_src + 1):
        side = round((n_src / t_src)**0.5)
        if t_src * side * side == n_src and (side == h_dst or t_src == t_dst):
            break
    else:
        raise ValueError(f'cannot infer the source grid of a position table with {n_src} patch rows for the grid '
                         f'{tuple(dst_grid)}; the checkpoint was trained at another patch size or width')
    patch = interpolate_pos_embed(table[:, num_cls:], (t_src, side, side), dst_grid)
    return torch.cat([table[:, :num_cls], patch], dim=1)

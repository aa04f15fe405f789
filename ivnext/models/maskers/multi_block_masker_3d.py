"""V-JEPA multi-block 3D masking (Stage 2 views)."""
import math
from typing import Optional, Sequence, Tuple

import torch
from mmaction.registry import MODELS

from .base_masker import BaseMasker
from .token_mask import TokenMask


def _uniform(low_high: Sequence[float], generator: Optional[torch.Generator], device) -> float:
    low, high = float(low_high[0]), float(low_high[1])
    return low + float(torch.rand(1, generator=generator, device=device)) * (high - low)


@MODELS.register_module()
class MultiBlockMasker3D(BaseMasker):
    """Mask the union of several random 3D blocks (V-JEPA multi-block), equalised over the batch.

    As in V-JEPA's ``MaskCollator``: one block size (t, h, w) is drawn per call and shared by every block of every
    sample (spatial area ``int(H*W*s)`` with ``s ~ U(spatial_scale)``, aspect ratio h/w ``~ U(aspect_ratio)``,
    ``h = round(sqrt(area*ar))``, ``w = round(sqrt(area/ar))`` clipped to the grid, ``t = max(1, int(T*ts))``),
    then each of the ``num_blocks`` blocks gets its own uniform position per sample. The masked region is the union
    of the blocks; the visible (context) tokens are its complement. Samples whose context is empty are redrawn.

    Equal counts (the release's Stage-2 collator): every sample keeps only as many context tokens as the sample
    with the fewest, and at most ``max_context_tokens`` / ``max_context_ratio * T*H*W`` (the release caps the
    context at ``400 * T / 8`` tokens, a ratio of 400 / (8 * 16 * 16) on the 224-px grid); the surplus context
    tokens are masked too. ``context_order='raster'`` (the release, default) keeps the *earliest* context tokens in
    (t, h, w) raster order, so late frames often lose all context and Stage 2 partly predicts the future;
    ``context_order='random'`` (ablation) keeps a uniformly random subset, favouring no frame or corner.

    Stage-2 recipe (paper / release): two views, ``num_blocks=8, spatial_scale=(0.15, 0.15)`` and
    ``num_blocks=2, spatial_scale=(0.7, 0.7)``, ``aspect_ratio=(0.75, 1.5)``, ``temporal_scale=(1.0, 1.0)``,
    ``max_context_ratio=400 / 2048``.

    Args:
        num_blocks: Blocks per sample.
        spatial_scale: Range of the block area as a fraction of H*W.
        aspect_ratio: Range of the block aspect ratio h/w.
        temporal_scale: Range of the block length as a fraction of T.
        max_context_tokens: Optional cap on the visible tokens per sample.
        max_context_ratio: Optional cap on the visible tokens as a fraction of T*H*W (both caps may be set; the
            smaller wins).
        context_order: Which context tokens survive the equalisation and the cap: 'raster' (earliest) or
            'random'.
        max_tries: Redraws allowed for samples whose blocks cover the whole clip.
    """

    def __init__(self,
                 num_blocks: int = 8,
                 spatial_scale: Tuple[float, float] = (0.15, 0.15),
                 aspect_ratio: Tuple[float, float] = (0.75, 1.5),
                 temporal_scale: Tuple[float, float] = (1.0, 1.0),
                 max_context_tokens: Optional[int] = None,
                 max_context_ratio: Optional[float] = None,
                 context_order: str = 'raster',
                 max_tries: int = 20) -> None:
        super().__init__()
        for name, rng, upper in (('spatial_scale', spatial_scale, 1.), ('temporal_scale', temporal_scale, 1.),
                                 ('aspect_ratio', aspect_ratio, math.inf)):
            if len(rng) != 2 or not 0. < rng[0] <= rng[1] <= upper:
                raise ValueError(f'{name} must be (low, high) with 0 < low <= high <= {upper}, got {rng}.')
        if num_blocks < 1:
            raise ValueError(f'num_blocks must be >= 1, got {num_blocks}.')
        if max_context_tokens is not None and max_context_tokens < 1:
            raise ValueError(f'max_context_tokens must be None or >= 1, got {max_context_tokens}.')
        if max_context_ratio is not None and not 0. < max_context_ratio <= 1.:
            raise ValueError(f'max_context_ratio must be None or in (0, 1], got {max_context_ratio}.')
        if context_order not in ('raster', 'random'):
            raise ValueError(f"context_order must be 'raster' (release) or 'random', got {context_order!r}.")
        self.max_context_ratio = max_context_ratio
        self.context_order = context_order
        self.num_blocks = int(num_blocks)
        self.spatial_scale = tuple(spatial_scale)
        self.aspect_ratio = tuple(aspect_ratio)
        self.temporal_scale = tuple(temporal_scale)
        self.max_context_tokens = max_context_tokens
        self.max_tries = int(max_tries)

    def sample_block_size(self, grid: Sequence[int], device=None,
                          generator: Optional[torch.Generator] = None) -> Tuple[int, int, int]:
        """Draw the block size (t, h, w) shared by the whole batch."""
        t_, h_, w_ = self.check_grid(grid)
        t = max(1, int(t_ * _uniform(self.temporal_scale, generator, device)))
        area = int(h_ * w_ * _uniform(self.spatial_scale, generator, device))
        ar = _uniform(self.aspect_ratio, generator, device)
        h = min(max(1, int(round(math.sqrt(area * ar)))), h_)
        w = min(max(1, int(round(math.sqrt(area / ar)))), w_)
        return min(t, t_), h, w

    def _sample_starts(self, n: int, grid, size, device, generator) -> torch.Tensor:
        limits = torch.tensor([g - s + 1 for g, s in zip(grid, size)], device=device, dtype=torch.float32)
        u = torch.rand(n, self.num_blocks, 3, device=device, generator=generator)
        return (u * limits).long().clamp_max(limits.long() - 1)

    @staticmethod
    def blocks_to_union(blocks: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
        """Union of boxes as a token mask.

        Args:
            blocks: (B, K, 6) long boxes ``[t0, h0, w0, t1, h1, w1)`` (half-open).
            grid: (T, H, W).

        Returns:
            Tensor: (B, T*H*W) bool, True inside any box.
        """
        inside = []
        for axis, size in enumerate(grid):
            pos = torch.arange(size, device=blocks.device)
            inside.append((pos >= blocks[..., axis, None]) & (pos < blocks[..., axis + 3, None]))  # (B, K, size)
        box = inside[0][..., :, None, None] & inside[1][..., None, :, None] & inside[2][..., None, None, :]
        return box.any(1).flatten(1)

    def context_size(self, min_context: int, num_tokens: int) -> int:
        """Context tokens kept per sample: the batch minimum, capped (at least 1)."""
        keep = min_context
        if self.max_context_tokens is not None:
            keep = min(keep, int(self.max_context_tokens))
        if self.max_context_ratio is not None:
            keep = min(keep, max(1, int(self.max_context_ratio * num_tokens)))
        return keep

    def sample_with_blocks(self,
                           batch_size: int,
                           grid: Sequence[int],
                           device: Optional[torch.device] = None,
                           generator: Optional[torch.Generator] = None) -> Tuple[TokenMask, torch.Tensor]:
        """Sample masks and return the boxes they come from.

        The boxes, redraws and count equalisation are data-dependent control flow, so they run on the host (the
        generator's device, CPU by default), as V-JEPA does in its data collator; the finished mask and its index
        sets are then copied to ``device`` (asynchronously from pinned memory on CUDA). The step on the
        accelerator never waits for it.

        Returns:
            tuple: the mask (TokenMask on ``device``, its masked count known on the host) and the blocks
            (B, num_blocks, 6) long ``[t0, h0, w0, t1, h1, w1)`` on the host.
        """
        grid = self.check_grid(grid)
        host = generator.device if generator is not None else torch.device('cpu')
        size = self.sample_block_size(grid, host, generator)
        size_t = torch.tensor(size, device=host)
        starts = self._sample_starts(batch_size, grid, size, host, generator)
        blocks = torch.cat([starts, starts + size_t], -1)
        union = self.blocks_to_union(blocks, grid)
        for _ in range(self.max_tries):
            empty = union.all(1)
            if not bool(empty.any()):
                break
            redo = self._sample_starts(int(empty.sum()), grid, size, host, generator)
            blocks[empty] = torch.cat([redo, redo + size_t], -1)
            union[empty] = self.blocks_to_union(blocks[empty], grid)
        if bool(union.all(1).any()):
            raise RuntimeError(f'{self.num_blocks} blocks of size {size} keep covering the whole grid {grid}; '
                               f'lower num_blocks or spatial_scale.')
        mask = self.context_from_union(union, generator)
        device = torch.device(device) if device is not None else host
        return mask.to(device, non_blocking=True), blocks

    def mask_from_blocks(self, blocks: torch.Tensor, grid: Sequence[int],
                         generator: Optional[torch.Generator] = None) -> TokenMask:
        """The mask given the boxes: their union masked, then the context equalised and capped.

        Args:
            blocks: (B, K, 6) long boxes ``[t0, h0, w0, t1, h1, w1)`` (half-open), e.g. from
                :meth:`sample_with_blocks` or from another implementation's draws.
            grid: (T, H, W).
            generator: Draws the kept subset for ``context_order='random'`` (unused for 'raster').

        Returns:
            TokenMask: on the boxes' device.

        Raises:
            ValueError: a sample's boxes cover the whole grid (no context left).
        """
        grid = self.check_grid(grid)
        union = self.blocks_to_union(blocks, grid)
        if bool(union.all(1).any()):
            raise ValueError(f'blocks cover the whole grid {tuple(grid)} in samples '
                             f'{union.all(1).nonzero().flatten().tolist()}; every sample needs context')
        return self.context_from_union(union, generator)

    def context_from_union(self, union: torch.Tensor, generator: Optional[torch.Generator] = None) -> TokenMask:
        """Context = complement of ``union``, cut to the batch minimum and the cap, earliest (or random) first.

        Args:
            union: (B, N) bool, True inside a block; every row has at least one False.
            generator: Draws the kept subset for ``context_order='random'``.

        Returns:
            TokenMask: the same number of visible tokens in every sample.
        """
        keep = self.context_size(int((~union).sum(1).min()), union.shape[1])
        if self.context_order == 'raster':
            keys = torch.arange(union.shape[1], device=union.device, dtype=torch.float32).expand(union.shape)
        else:
            keys = torch.rand(union.shape, device=union.device, generator=generator)
        visible = keys.masked_fill(union, float('inf')).argsort(dim=1, stable=True)[:, :keep]
        return TokenMask.from_visible(visible, union.shape[1])

    def sample(self,
               batch_size: int,
               grid: Sequence[int],
               importance: Optional[torch.Tensor] = None,
               device: Optional[torch.device] = None,
               generator: Optional[torch.Generator] = None) -> TokenMask:
        return self.sample_with_blocks(batch_size, grid, device, generator)[0]

    def extra_repr(self) -> str:
        return (f'num_blocks={self.num_blocks}, spatial_scale={self.spatial_scale}, '
                f'aspect_ratio={self.aspect_ratio}, temporal_scale={self.temporal_scale}, '
                f'max_context_tokens={self.max_context_tokens}, max_context_ratio={self.max_context_ratio}, '
                f'context_order={self.context_order!r}')

"""One sampled token mask: the bool mask and its visible / masked index sets, built once per batch."""
from dataclasses import dataclass
from typing import Optional, Union

import torch

from ..utils import assert_on_device


@dataclass(frozen=True, eq=False)
class TokenMask:
    """A batch of token masks with the same masked count in every sample.

    Maskers return it; the encoder gathers ``visible_index``, the predictor scatters into ``visible_index`` and the
    targets are gathered at ``masked_index``, so no module sorts the mask again. Indices are in (t, h, w) raster
    order and the two index sets partition ``0 .. N-1`` in every row. Counts are host integers read from shapes
    (no device sync).

    Attributes:
        mask: (B, N) bool, True = masked (dropped from the encoder, predicted).
        visible_index: (B, N_vis) long, the visible tokens in raster order.
        masked_index: (B, N_mask) long, the masked tokens in raster order.
    """

    mask: torch.Tensor
    visible_index: torch.Tensor
    masked_index: torch.Tensor

    def __post_init__(self) -> None:
        mask, visible, masked = self.mask, self.visible_index, self.masked_index
        if mask.dim() != 2 or mask.dtype != torch.bool:
            raise ValueError(f'TokenMask.mask must be a (B, N) bool tensor, got {tuple(mask.shape)} {mask.dtype}')
        for name, index in (('visible_index', visible), ('masked_index', masked)):
            if index.dim() != 2 or index.dtype != torch.long or index.shape[0] != mask.shape[0]:
                raise ValueError(f'TokenMask.{name} must be a (B, K) long tensor with B={mask.shape[0]}, got '
                                 f'{tuple(index.shape)} {index.dtype}')
        if visible.shape[1] + masked.shape[1] != mask.shape[1]:
            raise ValueError(f'TokenMask holds {visible.shape[1]} visible + {masked.shape[1]} masked indices but '
                             f'{mask.shape[1]} tokens; build it with TokenMask.from_visible or TokenMask.from_mask')

    # ------------------------------------------------------------------ counts
    @property
    def batch_size(self) -> int:
        """B."""
        return self.mask.shape[0]

    @property
    def num_tokens(self) -> int:
        """N, tokens of the full grid."""
        return self.mask.shape[1]

    @property
    def num_visible(self) -> int:
        """N_vis, visible tokens per sample."""
        return self.visible_index.shape[1]

    @property
    def num_masked(self) -> int:
        """N_mask, masked tokens per sample."""
        return self.masked_index.shape[1]

    @property
    def device(self) -> torch.device:
        return self.mask.device

    # ------------------------------------------------------------ construction
    @classmethod
    def from_visible(cls, visible: torch.Tensor, num_tokens: int) -> 'TokenMask':
        """Build the mask from the visible tokens each sample keeps.

        Args:
            visible: (B, N_vis) long indices in ``[0, num_tokens)``, any order, distinct within a row.
            num_tokens: N.

        Returns:
            TokenMask: with both index sets sorted into raster order (one stable sort of the mask).
        """
        if visible.dim() != 2:
            raise ValueError(f'visible must be (B, N_vis) token indices, got shape {tuple(visible.shape)}')
        num_visible = visible.shape[1]
        if not 0 <= num_visible <= num_tokens:
            raise ValueError(f'visible holds {num_visible} indices per row but the grid has {num_tokens} tokens')
        mask = torch.ones(visible.shape[0], num_tokens, dtype=torch.bool, device=visible.device)
        mask.scatter_(1, visible, False)
        if visible.shape[0]:
            assert_on_device((~mask).sum(1).eq(num_visible).all(),
                             f'every row of visible must hold {num_visible} distinct token indices')
        return cls._split(mask, num_visible)

    @classmethod
    def from_mask(cls, mask: torch.Tensor, num_masked: Optional[int] = None) -> 'TokenMask':
        """Build the index sets of a (B, N) bool mask (True = masked).

        Args:
            mask: (B, N) bool with the same number of True in every row.
            num_masked: Masked tokens per row when the caller knows it: then it is checked on the device and
                nothing is read back. Without it the counts are read back (one host-device sync) and checked.

        Returns:
            TokenMask.

        Raises:
            ValueError: rows mask different numbers of tokens (on an accelerator with ``num_masked``, a device
                assertion with the same message).
        """
        if mask.dim() != 2 or mask.dtype != torch.bool:
            raise ValueError(f'mask must be a (B, N) bool tensor (True = masked), got {tuple(mask.shape)} '
                             f'{mask.dtype}')
        b, n = mask.shape
        per_sample = (~mask).sum(1)
        if num_masked is None:
            if b == 0:
                raise ValueError('an empty batch of masks needs num_masked')
            low, high = torch.stack(per_sample.aminmax()).tolist()  # one host read for the check and the count
            if low != high:
                raise ValueError(f'mask must mask the same number of tokens in every sample, got visible counts '
                                 f'{per_sample.tolist()}')
            num_visible = low
        else:
            if not 0 <= num_masked <= n:
                raise ValueError(f'num_masked={num_masked} is outside [0, {n}] for a mask of {n} tokens')
            num_visible = n - num_masked
            if b:
                assert_on_device(per_sample.eq(num_visible).all(),
                                 f'every mask row must hold {num_visible} visible tokens ({num_masked} masked): '
                                 'pass the count the masker reported with its mask')
        return cls._split(mask, num_visible)

    @classmethod
    def _split(cls, mask: torch.Tensor, num_visible: int) -> 'TokenMask':
        # One stable sort: visible tokens first, then masked ones, each in raster order.
        order = torch.argsort(mask.to(torch.int8), dim=1, stable=True)
        return cls(mask, order[:, :num_visible], order[:, num_visible:])

    @classmethod
    def coerce(cls, mask: Union['TokenMask', torch.Tensor]) -> 'TokenMask':
        """A ``TokenMask`` as is, or one built from a (B, N) mask tensor, nonzero = masked (the public encoder API
        takes either)."""
        if isinstance(mask, TokenMask):
            return mask
        return cls.from_mask(mask if mask.dtype == torch.bool else mask.bool())

    # ---------------------------------------------------------------- transfer
    def to(self, device: Union[str, torch.device], non_blocking: bool = False) -> 'TokenMask':
        """The same mask on ``device``; from CPU to CUDA with ``non_blocking`` the copy goes through pinned memory
        so the host does not wait for it."""
        device = torch.device(device)
        if device == self.device:
            return self
        tensors = (self.mask, self.visible_index, self.masked_index)
        if non_blocking and self.device.type == 'cpu' and device.type == 'cuda':
            tensors = tuple(t.pin_memory() for t in tensors)
        return TokenMask(*(t.to(device, non_blocking=non_blocking) for t in tensors))

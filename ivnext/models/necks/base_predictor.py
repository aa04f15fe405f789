"""Input assembly shared by the Stage-1 predictors: full grid with mask tokens, positions, CLS, projection."""
from abc import abstractmethod
from typing import Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import nn

from ..layers import interpolate_pos_embed, sincos_3d
from ..maskers.token_mask import TokenMask
from .mlp_decoder import MLPDecoder


class BasePredictor(BaseModule):
    """Predictor base: ``assemble`` the full token grid, then subclasses run their layers in ``forward_layers``.

    Assembly (as the released Stage-1 model):

    1. visible encoder tokens are scattered back to their raster positions of the (T', H', W') grid; masked
       slots hold one learnable mask token (encoder width, init trunc-normal std 0.02);
    2. a learnable position table (encoder width; the release's ``diff_pos_embed``) is added to every token: its
       CLS rows start at zero, its patch rows from the 3D sin-cos embedding built for :attr:`pos_grid`
       (``grid_size``, or ``pos_embed_frames`` rows in time), interpolated to the clip's grid in every forward
       when they differ; it gets no weight decay;
    3. the CLS tokens are prepended and every token goes through an MLP (Linear-GELU-Linear-LayerNorm)
       from the encoder width to the predictor width.

    Args:
        in_dims: Encoder width C_enc.
        embed_dims: Predictor width C_pred (output width).
        num_cls_tokens: CLS tokens at the front of the encoder output.
        grid_size: Token grid (T', H', W') of the clips.
        pos_embed_frames: Rows in time of the stored position table, in token-grid frames (frames / tubelet).
            None (default): ``grid_size[0]``, and a table of another frame count is resampled once at load. A
            number (e.g. 16 in a 32-frame Stage 2, as released): a table of that many rows loads as it is and
            is interpolated linearly in time to the clip's grid in every forward, so gradients reach its rows.
            Stage 2 sets it from the encoder's ``pos_embed_frames`` when it is not stated.
        init_cfg: MMEngine init config.
    """

    def __init__(self, in_dims: int, embed_dims: int, num_cls_tokens: int = 4,
                 grid_size: Sequence[int] = (16, 16, 16), pos_embed_frames: Optional[int] = None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if len(grid_size) != 3:
            raise ValueError(f'grid_size must be (T, H, W) in tokens, got {grid_size}')
        if pos_embed_frames is not None and pos_embed_frames < 1:
            raise ValueError(f'pos_embed_frames must be a positive number of token-grid frames or None, got '
                             f'{pos_embed_frames}')
        self.in_dims = in_dims
        self.embed_dims = embed_dims
        self.num_cls_tokens = num_cls_tokens
        self.grid_size = tuple(int(g) for g in grid_size)
        self.pos_embed_frames = pos_embed_frames
        self.pos_grid = ((int(pos_embed_frames), *self.grid_size[1:]) if pos_embed_frames is not None
                         else self.grid_size)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, in_dims))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        pos = torch.cat([torch.zeros(num_cls_tokens, in_dims), sincos_3d(in_dims, self.pos_grid)])
        self.pos_embed = nn.Parameter(pos.unsqueeze(0))
        self.projector = MLPDecoder(in_dims, embed_dims)

    def adapt_pos_embed(self, table: torch.Tensor) -> torch.Tensor:
        """Resample a loaded position table (e.g. Stage 1's, 16 frames) to this predictor's :attr:`pos_grid`.

        The loaded table must have the same CLS rows and spatial grid; its frame count is read from its length.
        Stage 2 interpolates the trained Stage-1 table in time this way instead of rebuilding it.

        Args:
            table: (1, num_cls + T_src*H*W, C) loaded table.

        Returns:
            Tensor: (1, num_cls + T*H*W, C).
        """
        if table.shape == self.pos_embed.shape:
            return table
        _, h, w = self.pos_grid
        rows = table.shape[1] - self.num_cls_tokens
        if table.dim() != 3 or table.shape[-1] != self.in_dims or rows <= 0 or rows % (h * w):
            raise ValueError(f'cannot resample a predictor position table of shape {tuple(table.shape)} to grid '
                             f'{self.pos_grid} with {self.num_cls_tokens} CLS rows and width {self.in_dims}; '
                             'the checkpoint was trained at another resolution or width')
        src_grid = (rows // (h * w), h, w)
        patch = interpolate_pos_embed(table[:, self.num_cls_tokens:], src_grid, self.pos_grid)
        return torch.cat([table[:, :self.num_cls_tokens], patch], dim=1)

    def scatter(self, visible: torch.Tensor, mask: TokenMask) -> torch.Tensor:
        """Place visible tokens at their grid slots and the mask token everywhere else.

        Args:
            visible: (B, N_vis, C_enc) visible patch tokens in raster order.
            mask: The mask the encoder ran with.

        Returns:
            Tensor: (B, N, C_enc).
        """
        index = mask.visible_index
        canvas = self.mask_token.to(visible.dtype).expand(mask.batch_size, mask.num_tokens, -1)
        return canvas.scatter(1, index.unsqueeze(-1).expand(-1, -1, visible.shape[-1]), visible)

    def assemble(self, tokens: torch.Tensor, mask: TokenMask, grid: Tuple[int, int, int]) -> torch.Tensor:
        """Build the predictor input.

        Args:
            tokens: (B, num_cls + N_vis, C_enc) encoder output, CLS first.
            mask: The :class:`TokenMask` the encoder ran with; N = T'*H'*W'.
            grid: (T', H', W').

        Returns:
            Tensor: (B, num_cls + N, C_pred).
        """
        if tokens.dim() != 3 or tokens.shape[-1] != self.in_dims:
            raise ValueError(f'tokens must be (B, num_cls + N_vis, {self.in_dims}), got {tuple(tokens.shape)}; '
                             'set in_dims to the encoder width.')
        if not isinstance(mask, TokenMask):
            raise TypeError(f'mask must be the TokenMask the encoder ran with (a masker\'s output, or '
                            f'TokenMask.from_mask(bool_mask)), got {type(mask).__name__}')
        if mask.batch_size != tokens.shape[0]:
            raise ValueError(f'mask has batch size {mask.batch_size} but tokens have {tokens.shape[0]}')
        grid = tuple(int(g) for g in grid)
        if mask.num_tokens != grid[0] * grid[1] * grid[2]:
            raise ValueError(f'mask has {mask.num_tokens} tokens but grid {grid} has {grid[0] * grid[1] * grid[2]}')
        if tokens.shape[1] != self.num_cls_tokens + mask.num_visible:
            raise ValueError(f'tokens hold {tokens.shape[1]} rows but the mask keeps {mask.num_visible} visible '
                             f'tokens after {self.num_cls_tokens} CLS tokens: pass the mask the encoder ran with')
        cls, visible = tokens[:, :self.num_cls_tokens], tokens[:, self.num_cls_tokens:]
        full = self.scatter(visible, mask)
        pos = self.pos_embed.to(full.dtype)
        cls = cls + pos[:, :self.num_cls_tokens]
        # Linear in time (trilinear, align_corners=False, spatial size kept) when the table has other frames.
        full = full + interpolate_pos_embed(pos[:, self.num_cls_tokens:], self.pos_grid, grid)
        return self.projector(torch.cat([cls, full], dim=1))

    @abstractmethod
    def forward_layers(self, x: torch.Tensor) -> torch.Tensor:
        """Run the predictor layers on (B, L, C_pred); returns (B, L, C_pred)."""

    def forward(self, tokens: torch.Tensor, mask: TokenMask, grid: Tuple[int, int, int]) -> torch.Tensor:
        """Predict every token of the grid.

        Args:
            tokens: (B, num_cls + N_vis, C_enc) encoder output, CLS first, visible tokens in raster order.
            mask: The :class:`TokenMask` the encoder ran with.
            grid: (T', H', W') with N = T'*H'*W'.

        Returns:
            Tensor: (B, num_cls + N, C_pred), CLS first, then the N grid tokens in raster order.
        """
        return self.forward_layers(self.assemble(tokens, mask, grid))

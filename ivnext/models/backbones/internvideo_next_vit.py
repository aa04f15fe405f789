"""The InternVideo-Next video ViT encoder."""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import nn

from ivnext.utils.checkpoint import load_weights

from ..layers import (AttentionPoolingBlock, RMSNorm, TransformerBlock, interpolate_pos_embed, resize_pos_table,
                      run_blocks, sincos_3d)
from ..maskers.token_mask import TokenMask
from ..utils import gather_tokens, patchify

ARCH_SETTINGS: Dict[str, Dict] = {
    # Paper: Base 768/12/12, Large 1024/24/16, 1B 1408/40/16 with MLP ratio 48/11.
    'base': dict(embed_dims=768, num_layers=12, num_heads=12, mlp_ratio=4.0),
    'large': dict(embed_dims=1024, num_layers=24, num_heads=16, mlp_ratio=4.0),
    '1b': dict(embed_dims=1408, num_layers=40, num_heads=16, mlp_ratio=48 / 11),
}
OUT_TYPES = ('featmap', 'tokens', 'avg', 'pooled')


class PatchEmbed3D(nn.Module):
    """RMSNorm over each raw patch, a (tubelet x p x p) Conv3d, then RMSNorm.

    The convolution is applied as one matrix product on the normalised patch vectors, which is the same
    operation as ``Conv3d`` with stride = kernel, without building the re-assembled clip in memory.

    Args:
        embed_dims: Output width C.
        patch_size: Spatial patch side p.
        tubelet_size: Temporal patch length u.
        in_channels: Input channels.
        eps: RMSNorm epsilon.
    """

    def __init__(self, embed_dims: int, patch_size: int = 14, tubelet_size: int = 1, in_channels: int = 3,
                 eps: float = 1e-6):
        super().__init__()
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.norm_before = RMSNorm(tubelet_size * patch_size * patch_size * in_channels, eps=eps)
        self.proj = nn.Conv3d(in_channels, embed_dims, kernel_size=(tubelet_size, patch_size, patch_size),
                              stride=(tubelet_size, patch_size, patch_size))
        self.norm = RMSNorm(embed_dims, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (B, C_in, T, H, W). Returns tokens (B, N, C) in (t, h, w) order."""
        patches = self.norm_before(patchify(x, self.patch_size, self.tubelet_size))
        # Conv3d weight (C, C_in, u, p, p) -> (C, u*p*p*C_in) matching the patch vector layout (u, p, p, c).
        weight = self.proj.weight.permute(0, 2, 3, 4, 1).flatten(1)
        return self.norm(F.linear(patches, weight, self.proj.bias))


@MODELS.register_module()
class InternVideoNextViT(BaseModule):
    """InternVideo-Next ViT: the encoder users keep, probe and fine-tune.

    Patch 14, tubelet 1, 4 learnable CLS tokens, a learnable position table initialised from 3D sin-cos, RMSNorm
    pre-norm blocks with QK-norm, LayerScale and no qkv bias, no final norm, and an attention-pooling clip projector.
    Parameter names equal the released checkpoints' keys, so released weights load as they are.

    Args:
        arch: 'base', 'large', '1b' or a dict with embed_dims, num_layers, num_heads, mlp_ratio.
        img_size: Build resolution (square).
        patch_size: Spatial patch side.
        num_frames: Build number of frames (the clips' frame count; :attr:`grid_size` follows it).
        pos_embed_frames: Frames the learnable position table is stored at. None (default): ``num_frames``, the
            table has ``num_frames // tubelet_size`` rows in time and a checkpoint of another frame count is
            resampled once at load. A number (e.g. 16 in a 32-frame Stage 2, as released): the table keeps
            ``pos_embed_frames // tubelet_size`` rows in time, loads such a table as it is, and is interpolated
            linearly in time to the clip's frames in every forward (see :meth:`patch_pos_embed`), so gradients
            reach the stored rows.
        tubelet_size: Temporal patch length.
        in_channels: Input channels.
        num_cls_tokens: Learnable CLS tokens prepended to the sequence.
        drop_path_rate: Stochastic depth, linearly increasing over blocks.
        layer_scale_init_value: LayerScale init.
        out_indices: Block index or indices whose outputs :meth:`forward` returns (negative from the end).
        out_type: 'featmap' (B, C, T', H', W'), 'tokens' (B, cls+N, C), 'avg' (B, C) or 'pooled' (B, clip dims).
        with_cp: Activation checkpointing on every block.
        frozen_stages: Freeze patch embedding, CLS tokens, position table and the first ``frozen_stages`` blocks
            (-1: none).
        use_flash_attn: Prefer flash-attn kernels when installed (same weights and results as SDPA).
        with_clip_projector: Build the attention-pooling projector. None (default): build it only when the
            output may be pooled, i.e. for ``out_type='pooled'`` and ``'tokens'`` (pretraining algorithms pool the
            tokens through :meth:`pool`); ``'featmap'`` / ``'avg'`` encoders have no parameters that no output
            uses (DDP without ``find_unused_parameters``). Released weights carry projector keys; an encoder built
            without a projector drops them on load.
        clip_embed_dims: Projector output width (the ``in_channels`` of a head on ``'pooled'`` outputs; see
            :attr:`out_channels`).
        clip_num_heads: Projector heads.
        pretrained: Path of a released or ivnext encoder checkpoint loaded in :meth:`init_weights`.
        init_cfg: MMEngine init config.
    """

    def __init__(self,
                 arch: Union[str, Dict] = 'base',
                 img_size: int = 224,
                 patch_size: int = 14,
                 num_frames: int = 16,
                 pos_embed_frames: Optional[int] = None,
                 tubelet_size: int = 1,
                 in_channels: int = 3,
                 num_cls_tokens: int = 4,
                 drop_path_rate: float = 0.0,
                 layer_scale_init_value: float = 1e-5,
                 out_indices: Union[int, Sequence[int]] = -1,
                 out_type: str = 'featmap',
                 with_cp: bool = False,
                 frozen_stages: int = -1,
                 use_flash_attn: bool = True,
                 with_clip_projector: Optional[bool] = None,
                 clip_embed_dims: int = 768,
                 clip_num_heads: int = 16,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None):
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            if arch not in ARCH_SETTINGS:
                raise KeyError(f'unknown arch {arch!r}; choose one of {sorted(ARCH_SETTINGS)} or pass a dict')
            arch = ARCH_SETTINGS[arch]
        missing = {'embed_dims', 'num_layers', 'num_heads'} - set(arch)
        if missing:
            raise KeyError(f'custom arch dict lacks {sorted(missing)}')
        if out_type not in OUT_TYPES:
            raise ValueError(f'out_type must be one of {OUT_TYPES}, got {out_type!r}')
        if img_size % patch_size or num_frames % tubelet_size:
            raise ValueError(f'img_size {img_size} / num_frames {num_frames} must be divisible by '
                             f'patch_size {patch_size} / tubelet_size {tubelet_size}')
        if pos_embed_frames is not None and (pos_embed_frames < 1 or pos_embed_frames % tubelet_size):
            raise ValueError(f'pos_embed_frames={pos_embed_frames} must be a positive multiple of tubelet_size '
                             f'{tubelet_size} (the table holds pos_embed_frames // tubelet_size rows in time); '
                             'fix it, or set pos_embed_frames=None for a table at num_frames')
        if with_clip_projector is None:
            with_clip_projector = out_type in ('pooled', 'tokens')
        if out_type == 'pooled' and not with_clip_projector:
            raise ValueError("out_type='pooled' needs with_clip_projector=True")
        self.embed_dims = arch['embed_dims']
        self.num_layers = arch['num_layers']
        self.num_heads = arch['num_heads']
        self.mlp_ratio = arch.get('mlp_ratio', 4.0)
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.num_cls_tokens = num_cls_tokens
        self.grid_size = (num_frames // tubelet_size, img_size // patch_size, img_size // patch_size)
        self.pos_embed_frames = pos_embed_frames
        # Token grid of the stored position table: the clip grid unless the table is kept at other frames.
        self.pos_grid = ((pos_embed_frames // tubelet_size, *self.grid_size[1:]) if pos_embed_frames is not None
                         else self.grid_size)
        self.out_type = out_type
        self.with_cp = with_cp
        self.frozen_stages = frozen_stages
        self.pretrained = pretrained
        indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        self.out_indices = [i % self.num_layers for i in indices]
        if out_type == 'pooled' and self.out_indices != [self.num_layers - 1]:
            raise ValueError("out_type='pooled' pools the last block; use out_indices=-1")

        self.patch_embed = PatchEmbed3D(self.embed_dims, patch_size, tubelet_size, in_channels)
        self.cls_token = nn.Parameter(torch.zeros(1, num_cls_tokens, self.embed_dims))
        num_patches = math.prod(self.pos_grid)
        # Learnable table as released (CLS rows = 0, patch rows initialised from 3D sin-cos; no weight decay).
        pos = torch.cat([torch.zeros(num_cls_tokens, self.embed_dims), sincos_3d(self.embed_dims, self.pos_grid)])
        self.pos_embed = nn.Parameter(pos.unsqueeze(0))
        assert self.pos_embed.shape[1] == num_patches + num_cls_tokens
        dpr = torch.linspace(0, drop_path_rate, self.num_layers).tolist()
        self.blocks = nn.ModuleList([
            TransformerBlock(self.embed_dims, self.num_heads, self.mlp_ratio, qkv_bias=False, qk_norm=True,
                             layer_scale_init_value=layer_scale_init_value, drop_path=dpr[i],
                             use_flash_attn=use_flash_attn) for i in range(self.num_layers)
        ])
        self.clip_projector = (AttentionPoolingBlock(self.embed_dims, clip_num_heads, clip_embed_dims)
                               if with_clip_projector else None)
        self.clip_embed_dims = clip_embed_dims if with_clip_projector else None
        self._register_load_state_dict_pre_hook(self._drop_unbuilt_projector_keys)
        self._init_parameters()
        self._freeze_stages()

    @property
    def out_channels(self) -> int:
        """Channels of :meth:`forward`'s output: ``in_channels`` of a head on it (the projector width for
        ``'pooled'``, the encoder width otherwise)."""
        return self.clip_embed_dims if self.out_type == 'pooled' else self.embed_dims

    def _drop_unbuilt_projector_keys(self, state_dict: Dict, prefix: str, *args) -> None:
        """Load-time hook: without a projector, ignore the ``clip_projector.*`` entries of released weights."""
        if self.clip_projector is None:
            for key in [k for k in state_dict if k.startswith(prefix + 'clip_projector.')]:
                del state_dict[key]

    # ------------------------------------------------------------------ init
    def _init_parameters(self) -> None:
        trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        with torch.no_grad():
            for layer_id, block in enumerate(self.blocks, start=1):
                block.attn.proj.weight.div_(math.sqrt(2.0 * layer_id))
                block.mlp.fc2.weight.div_(math.sqrt(2.0 * layer_id))

    def init_weights(self) -> None:
        """Load ``pretrained`` (released or ivnext weights) if given, else MMEngine's ``init_cfg``."""
        if self.pretrained:
            load_weights(
                self, self.pretrained, 'lenient',
                opt_in='`python tools/convert/export_backbone.py --trust-checkpoint SRC OUT.safetensors` first and '
                'set `pretrained` to OUT.safetensors')
            return
        if self.init_cfg:
            super().init_weights()

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = [self.patch_embed, *self.blocks[:self.frozen_stages]]
        self.cls_token.requires_grad_(False)
        self.pos_embed.requires_grad_(False)
        for module in frozen:
            module.eval()
            module.requires_grad_(False)

    def train(self, mode: bool = True) -> 'InternVideoNextViT':
        super().train(mode)
        self._freeze_stages()
        return self

    # --------------------------------------------------------------- forward
    def grid_of(self, x: torch.Tensor) -> Tuple[int, int, int]:
        """Token grid (T', H', W') of a clip (B, C, T, H, W)."""
        if x.dim() != 5:
            raise ValueError(f'expected a clip (B, C, T, H, W), got shape {tuple(x.shape)}; mmaction2 pipelines '
                             "need FormatShape(input_format='NCTHW')")
        _, _, t, h, w = x.shape
        return t // self.tubelet_size, h // self.patch_size, w // self.patch_size

    def adapt_pos_embed(self, table: torch.Tensor) -> torch.Tensor:
        """Resize a loaded position table (e.g. of a 16-frame checkpoint) to this encoder's table grid.

        The table grid is :attr:`pos_grid`: ``grid_size``, or ``pos_embed_frames`` in time when that is set (a
        16-frame Stage-1 table then loads into a 32-frame Stage-2 encoder as it is).

        Args:
            table: (1, num_cls_tokens + N_src, C) loaded table.

        Returns:
            Tensor: (1, num_cls_tokens + T*H*W, C) with (T, H, W) = :attr:`pos_grid`.
        """
        return resize_pos_table(table, self.num_cls_tokens, self.pos_grid)

    def patch_pos_embed(self, grid: Tuple[int, int, int]) -> torch.Tensor:
        """Patch position table for ``grid``, interpolated from the stored one when the grids differ.

        The stored table (:attr:`pos_grid`) is seen as a (C, T, H, W) volume and resampled trilinearly with
        ``align_corners=False``; with the spatial size kept (``pos_embed_frames`` at the clip's resolution) this
        is linear interpolation in time with ``align_corners=False``, the release's ``expand_pos_embed``. It runs
        in every forward and is differentiable, so gradients reach the stored rows.

        Args:
            grid: Clip token grid (T', H', W').

        Returns:
            Tensor: (1, T'*H'*W', C) patch positions (no CLS rows).
        """
        return interpolate_pos_embed(self.pos_embed[:, self.num_cls_tokens:], self.pos_grid, grid)

    def embed(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int, int]]:
        """Patch embedding plus positions.

        Args:
            x: Clip (B, C, T, H, W).

        Returns:
            tuple: tokens (B, N, C) without CLS, and the grid (T', H', W').
        """
        grid = self.grid_of(x)
        tokens = self.patch_embed(x.to(self.patch_embed.proj.weight.dtype))
        return tokens + self.patch_pos_embed(grid).to(tokens.dtype), grid

    def prepend_cls(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L, C) -> (B, cls + L, C) with the CLS tokens and their position rows."""
        cls = self.cls_token + self.pos_embed[:, :self.num_cls_tokens].to(self.cls_token.dtype)
        return torch.cat([cls.expand(tokens.shape[0], -1, -1).to(tokens.dtype), tokens], dim=1)

    def run_blocks(self, x: torch.Tensor, return_layers: Sequence[int] = ()) -> Tuple[torch.Tensor, List]:
        """Run every block on (B, L, C); collect the outputs of ``return_layers`` (block indices)."""
        wanted = {i % self.num_layers: pos for pos, i in enumerate(return_layers)}
        hidden: List[Optional[torch.Tensor]] = [None] * len(return_layers)

        def keep(i: int, out: torch.Tensor) -> None:
            if i in wanted:
                hidden[wanted[i]] = out

        x = run_blocks(self.blocks, x, with_cp=self.with_cp and self.training, on_output=keep)
        return x, hidden

    def forward_tokens(self, x: torch.Tensor, mask: Optional[Union[TokenMask, torch.Tensor]] = None,
                       return_layers: Sequence[int] = ()) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """Encode a clip, keeping only visible tokens when a mask is given.

        Args:
            x: Clip (B, C, T, H, W).
            mask: The masker's :class:`TokenMask` (its ``visible_index`` is gathered, nothing is sorted), or a
                (B, N) bool tensor, True = masked (dropped), the same count in every sample (its indices are then
                computed here, reading the count back once).
            return_layers: Block indices whose outputs are also returned.

        Returns:
            tuple: final tokens (B, cls + N_vis, C) and a list of (B, cls + N_vis, C) per ``return_layers``.
        """
        tokens, grid = self.embed(x)
        if mask is not None:
            n = math.prod(grid)
            shape = tuple(mask.mask.shape if isinstance(mask, TokenMask) else mask.shape)
            if shape != (tokens.shape[0], n):
                raise ValueError(f'mask must have shape (B, N) = ({tokens.shape[0]}, {n}) for grid {grid}, '
                                 f'got {shape}')
            tokens = gather_tokens(tokens, TokenMask.coerce(mask).visible_index)
        return self.run_blocks(self.prepend_cls(tokens), return_layers)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Attention-pooled clip embedding (B, clip_embed_dims) from tokens (B, L, C)."""
        if self.clip_projector is None:
            raise RuntimeError('this encoder was built with with_clip_projector=False')
        return self.clip_projector(tokens)

    def forward(self, x: torch.Tensor, mask: Optional[Union[TokenMask, torch.Tensor]] = None):
        """Features in the configured ``out_type`` for every ``out_indices`` block.

        Args:
            x: Clip (B, C, T, H, W).
            mask: Optional :class:`TokenMask` or (B, N) bool tensor, True = masked; not allowed with
                ``out_type='featmap'``.

        Returns:
            Tensor or tuple of Tensors (one per out index).
        """
        if mask is not None and self.out_type == 'featmap':
            raise ValueError("out_type='featmap' needs the full clip; pass mask=None or use out_type='tokens'")
        grid = self.grid_of(x)
        last = self.num_layers - 1
        extra = [i for i in self.out_indices if i != last]
        final, hidden = self.forward_tokens(x, mask, extra)
        by_index = dict(zip(extra, hidden))
        by_index[last] = final
        outs = []
        for i in self.out_indices:
            feats = by_index[i]
            if self.out_type == 'tokens':
                outs.append(feats)
            elif self.out_type == 'avg':
                outs.append(feats[:, self.num_cls_tokens:].mean(1))
            elif self.out_type == 'pooled':
                outs.append(self.pool(feats))
            else:
                b, _, c = feats.shape
                outs.append(feats[:, self.num_cls_tokens:].transpose(1, 2).reshape(b, c, *grid))
        return outs[0] if len(outs) == 1 else tuple(outs)

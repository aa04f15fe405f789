"""Heads aligning the student encoder with a frozen image teacher: per-layer tokens and pooled embedding."""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmengine.model import BaseModule
from torch import nn

from ..layers import interpolate_pos_embed, sincos_3d
from ..losses import cosine_distance
from ..necks.mlp_decoder import MLPDecoder
from ..utils import gather_tokens


@MODELS.register_module()
class AlignmentHead(BaseModule):
    """MLP decoders from the student's last K encoder layers to the teacher's K hidden states.

    Each decoder is Linear-GELU-Linear-LayerNorm (hidden width = student width) followed by L2 normalisation,
    as the release. The loss is ``2 - 2 cos`` between decoded student tokens and the (L2-normalised) teacher
    tokens, averaged over layers, samples and tokens together, as the release
    (``(2 - 2 <s, t>).mean()`` over a (K, B, L) stack), times ``loss_weight``.

    With ``with_pos_embed`` (or a ``grid_size``), a learnable position table (the release's ``clip_pos_embed``,
    initialised from 3D sin-cos for ``grid_size``, no weight decay) is added to the student's tokens before the
    decoders; the caller passes the visible tokens' grid indices and the clip's grid. In a Stage-1 config,
    ``with_pos_embed=True`` is enough: the algorithm sets ``grid_size`` from the encoder.

    Args:
        in_dims: Student encoder width.
        target_dims: Teacher hidden width.
        num_layers: K, layers aligned (6 in the paper).
        loss_weight: Scale of ``loss_align``.
        grid_size: Token grid (T', H', W') of the position table.
        with_pos_embed: Build the position table (needs ``grid_size``). None: build it when ``grid_size`` is set.
        init_cfg: MMEngine init config.
    """

    def __init__(self, in_dims: int = 768, target_dims: int = 1152, num_layers: int = 6, loss_weight: float = 1.0,
                 grid_size: Optional[Sequence[int]] = None, with_pos_embed: Optional[bool] = None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if with_pos_embed is None:
            with_pos_embed = grid_size is not None
        if with_pos_embed and grid_size is None:
            raise ValueError('AlignmentHead(with_pos_embed=True) needs grid_size, the token grid (T\', H\', W\') of '
                             'its position table; the Stage-1 algorithm sets it from model.backbone')
        if not with_pos_embed and grid_size is not None:
            raise ValueError(f'AlignmentHead got grid_size={tuple(grid_size)} with with_pos_embed=False; drop one')
        self.with_pos_embed = bool(with_pos_embed)
        self.num_layers = num_layers
        self.loss_weight = loss_weight
        self.decoders = nn.ModuleList([MLPDecoder(in_dims, target_dims, l2_normalize=True) for _ in range(num_layers)])
        self.grid_size = tuple(int(g) for g in grid_size) if grid_size is not None else None
        self.clip_pos_embed = (nn.Parameter(sincos_3d(in_dims, self.grid_size).unsqueeze(0))
                               if self.grid_size is not None else None)

    def add_positions(self, x: torch.Tensor, visible_index: Optional[torch.Tensor],
                      grid: Optional[Tuple[int, int, int]]) -> torch.Tensor:
        """Add the position rows of the visible tokens (no-op without a table)."""
        if self.clip_pos_embed is None:
            return x
        if visible_index is None or grid is None:
            raise ValueError('AlignmentHead with grid_size needs visible_index and grid to place its positions')
        table = interpolate_pos_embed(self.clip_pos_embed, self.grid_size, tuple(grid)).to(x.dtype)
        return x + gather_tokens(table.expand(x.shape[0], -1, -1), visible_index)

    def forward(self, student_layers: Sequence[torch.Tensor], visible_index: Optional[torch.Tensor] = None,
                grid: Optional[Tuple[int, int, int]] = None) -> list:
        """Decode each student layer.

        Args:
            student_layers: K tensors (B, L, C_s), shallow to deep, visible tokens only (CLS removed).
            visible_index: (B, L) grid indices of those tokens (needed with a position table).
            grid: Token grid (T', H', W') of the clip (needed with a position table).

        Returns:
            list: K tensors (B, L, C_t), unit norm.
        """
        if len(student_layers) != self.num_layers:
            raise ValueError(f'expected {self.num_layers} student layers (num_layers), got {len(student_layers)}')
        return [decoder(self.add_positions(x, visible_index, grid))
                for decoder, x in zip(self.decoders, student_layers)]

    def loss(self, student_layers: Sequence[torch.Tensor], teacher_layers: Sequence[torch.Tensor],
             visible_index: Optional[torch.Tensor] = None,
             grid: Optional[Tuple[int, int, int]] = None) -> Dict[str, torch.Tensor]:
        """Token alignment loss.

        Args:
            student_layers: K tensors (B, L, C_s): the student's visible patch tokens at the aligned layers.
            teacher_layers: K tensors (B, L, C_t): teacher targets at the same tokens, L2-normalised.
            visible_index: (B, L) grid indices of the visible tokens (for the position table).
            grid: Token grid (T', H', W') (for the position table).

        Returns:
            dict: ``loss_align`` (scalar, weighted).
        """
        if len(teacher_layers) != len(student_layers):
            raise ValueError(f'got {len(student_layers)} student layers but {len(teacher_layers)} teacher layers')
        preds = self(student_layers, visible_index, grid)
        dist = torch.stack([cosine_distance(p, t) for p, t in zip(preds, teacher_layers)])  # (K, B, L)
        return dict(loss_align=self.loss_weight * dist.mean())


@MODELS.register_module()
class PooledAlignmentHead(BaseModule):
    """Aligns the student's attention-pooled clip embedding with the teacher's pooled embedding.

    With ``target_dims`` set, the student embedding goes through an L2-normalised MLP decoder
    (Linear-GELU-Linear-LayerNorm) to the teacher width, as the release (``clip_teacher_final_dim=768``);
    with ``target_dims=None`` it is compared directly (widths must match). The teacher target is its per-frame
    pooled embedding averaged over frames (done by the caller/teacher), a vector of norm <= 1. The loss, averaged
    over the batch and times ``loss_weight``, is ``2 - 2 cos(s, t)`` with ``normalize_target`` (the paper's
    cosine) or ``2 - 2 <s, t>`` with the unit-norm student ``s`` and the frame average ``t`` as it is, which
    weighs a clip by how consistent its frames are (the release's engine).

    Args:
        in_dims: Student pooled width (the encoder's ``clip_embed_dims``).
        target_dims: Teacher pooled width, or None for no projection.
        loss_weight: Scale of ``loss_align_pooled``.
        normalize_target: Compare with the unit-norm target (cosine, the paper) instead of the frame average as it
            is (the release).
        init_cfg: MMEngine init config.
    """

    def __init__(self, in_dims: int = 768, target_dims: Optional[int] = 768, loss_weight: float = 1.0,
                 normalize_target: bool = True, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.loss_weight = loss_weight
        self.normalize_target = normalize_target
        self.decoder = MLPDecoder(in_dims, target_dims, l2_normalize=True) if target_dims else nn.Identity()

    def forward(self, student_pooled: torch.Tensor) -> torch.Tensor:
        """Args: student_pooled (B, C_s). Returns (B, C_t)."""
        return self.decoder(student_pooled)

    def loss(self, student_pooled: torch.Tensor, teacher_pooled: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Pooled alignment loss.

        Args:
            student_pooled: (B, C_s) student attention-pooled embedding.
            teacher_pooled: (B, C_t) teacher pooled embedding (frame average).

        Returns:
            dict: ``loss_align_pooled`` (scalar, weighted).
        """
        pred = self(student_pooled)
        if self.normalize_target:
            dist = cosine_distance(pred, teacher_pooled)
        else:
            dist = 2 - 2 * (F.normalize(pred.float(), dim=-1, eps=1e-6) * teacher_pooled.float()).sum(-1)
        return dict(loss_align_pooled=self.loss_weight * dist.mean())

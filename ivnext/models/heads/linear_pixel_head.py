"""Linear pixel decoder: the ablation that replaces the diffusion head."""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmengine.model import BaseModule
from torch import nn


@MODELS.register_module()
class LinearPixelHead(BaseModule):
    """``Linear(C_pred -> D)`` regressed to the masked pixel patches with MSE.

    Same interface as :class:`ConditionalDiffusionHead`, so an algorithm swaps heads through its config.

    Args:
        in_dims: Width of the condition z (predictor width).
        target_dims: Width D of a target patch (588).
        loss_weight: Scale of ``loss_pixel``.
        init_cfg: MMEngine init config.
    """

    def __init__(self, in_dims: int = 1024, target_dims: int = 588, loss_weight: float = 1.0, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.in_dims = in_dims
        self.target_dims = target_dims
        self.loss_weight = loss_weight
        self.proj = nn.Linear(in_dims, target_dims)
        nn.init.xavier_uniform_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Args: z (..., C_pred). Returns (..., D)."""
        if z.shape[-1] != self.in_dims:
            raise ValueError(f'z must end with in_dims={self.in_dims}, got {tuple(z.shape)}')
        return self.proj(z)

    def loss(self, z: torch.Tensor, target: torch.Tensor, **kwargs) -> Dict[str, torch.Tensor]:
        """MSE to the targets.

        Args:
            z: (B, M, C_pred) predictor outputs at the masked tokens.
            target: (B, M, D) normalised pixel patches.
            **kwargs: Ignored (diffusion-only options such as ``timesteps``), so callers can pass the same arguments.

        Returns:
            dict: ``loss_pixel`` (scalar, weighted).
        """
        pred = self(z)
        if target.shape != pred.shape:
            raise ValueError(f'target must be {tuple(pred.shape)}, got {tuple(target.shape)}')
        return dict(loss_pixel=self.loss_weight * F.mse_loss(pred.float(), target.float()))

    @torch.no_grad()
    def sample(self, z: torch.Tensor, num_inference_steps: Optional[int] = None,
               generator: Optional[torch.Generator] = None, sampler: Optional[str] = None) -> torch.Tensor:
        """The deterministic prediction (arguments kept for interface parity). Returns (B, M, D)."""
        return self(z)

"""Stage-2 decoder: predictor tokens -> teacher latent space, trained with 2 - 2cos."""
from typing import Dict

import torch
from mmaction.registry import MODELS
from mmengine.model import BaseModule

from ..losses import cosine_distance
from ..necks.mlp_decoder import MLPDecoder


@MODELS.register_module()
class LatentRegressionHead(BaseModule):
    """MLP decoder (Linear-GELU-Linear-LayerNorm, L2-normalised) from the predictor width to the teacher width.

    The loss is ``2 - 2 cos`` between the decoded tokens and the frozen teacher's L2-normalised final-layer
    tokens at the same (masked) positions, averaged over tokens and samples, times ``loss_weight``.

    Args:
        in_dims: Predictor width.
        target_dims: Teacher encoder width.
        loss_weight: Scale of the loss.
        init_cfg: MMEngine init config.
    """

    def __init__(self, in_dims: int = 1024, target_dims: int = 768, loss_weight: float = 1.0, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.loss_weight = loss_weight
        self.decoder = MLPDecoder(in_dims, target_dims, l2_normalize=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Args: z (B, M, in_dims). Returns (B, M, target_dims), unit norm."""
        return self.decoder(z)

    def loss(self, z: torch.Tensor, target: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Args: z (B, M, in_dims); target (B, M, target_dims) L2-normalised. Returns ``loss_latent``."""
        if target.shape[:-1] != z.shape[:-1]:
            raise ValueError(f'target tokens {tuple(target.shape)} do not match predictions {tuple(z.shape)}')
        return dict(loss_latent=self.loss_weight * cosine_distance(self(z), target).mean())

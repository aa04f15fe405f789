"""Token-wise MLP decoder Linear-GELU-Linear-LayerNorm, optionally L2-normalised."""
import torch
import torch.nn.functional as F
from torch import nn


class MLPDecoder(nn.Module):
    """``LayerNorm(Linear(GELU(Linear(x))))`` with hidden width = input width, then optional L2 normalisation.

    This is the block the release uses to map encoder tokens to the predictor width and student layers to
    teacher layers. Linear weights are Xavier-uniform with zero bias, LayerNorm eps 1e-5.

    Args:
        in_dims: Input width.
        out_dims: Output width.
        l2_normalize: Divide the output by its L2 norm.
    """

    def __init__(self, in_dims: int, out_dims: int, l2_normalize: bool = False):
        super().__init__()
        self.fc1 = nn.Linear(in_dims, in_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(in_dims, out_dims)
        self.norm = nn.LayerNorm(out_dims, eps=1e-5)
        self.l2_normalize = l2_normalize
        for fc in (self.fc1, self.fc2):
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (..., in_dims). Returns (..., out_dims)."""
        x = self.norm(self.fc2(self.act(self.fc1(x))))
        return F.normalize(x, dim=-1) if self.l2_normalize else x

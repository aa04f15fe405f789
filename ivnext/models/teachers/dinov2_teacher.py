"""DINOv2 backbone as an image teacher (ablation prior, and the demo's teacher)."""
from typing import Tuple

import torch
from mmaction.registry import MODELS
from torch import nn
from transformers import Dinov2Config, Dinov2Model

from .hf_image_teacher import IMAGENET_MEAN, IMAGENET_STD, HFImageTeacher


@MODELS.register_module()
class DINOv2Teacher(HFImageTeacher):
    """Frozen DINOv2 (``Dinov2Model``) teacher.

    DINOv2 checkpoints store a 37x37 position table (``image_size=518``); the teacher runs at 224 px by default
    (16x16 patches of 14 px, the student's grid) and transformers interpolates the table (bicubic).

    - ``pooled``: the CLS token after the final layernorm (``pooler_output``).
    - ``importance``: last layer's CLS -> patch attention averaged over heads, recomputed from that layer's queries
      and keys (``norm1`` of the layer input, then the query / key projections); the softmax runs over all tokens
      and the patch part is renormalised to sum to 1.

    Args:
        **kwargs: See :class:`HFImageTeacher`. ``image_size`` defaults to 224, ``mean``/``std`` to ImageNet's.
    """

    model_class = Dinov2Model
    config_class = Dinov2Config
    default_image_size = 224
    default_mean = IMAGENET_MEAN
    default_std = IMAGENET_STD

    @property
    def num_cls_tokens(self) -> int:
        """CLS plus register tokens."""
        return 1 + int(getattr(self.vision_config, 'num_register_tokens', 0) or 0)

    def _encoder_layers(self) -> nn.ModuleList:
        return self.model.encoder.layer

    def _run_model(self, pixels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        out = self.model(pixel_values=pixels)
        return out.last_hidden_state, out.pooler_output

    def _importance(self, last_layer_input: torch.Tensor, last_hidden_state: torch.Tensor) -> torch.Tensor:
        layer = self._encoder_layers()[-1]
        x = layer.norm1(last_layer_input)
        project_query, project_key = _query_key_projections(layer)
        query = project_query(x[:, 0])
        keys = project_key(x)
        attn = self._single_query_attention(query, keys, self.num_heads)
        return attn[:, self.num_cls_tokens:]


def _query_key_projections(layer: nn.Module) -> Tuple[nn.Linear, nn.Linear]:
    """The query and key projections of a ``Dinov2Layer``.

    transformers 5 names them ``attention.q_proj`` / ``k_proj``; 4.x ``attention.attention.query`` / ``key``.
    """
    attention = layer.attention
    if hasattr(attention, 'q_proj'):
        return attention.q_proj, attention.k_proj
    return attention.attention.query, attention.attention.key

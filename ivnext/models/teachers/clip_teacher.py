"""OpenAI CLIP vision tower as an image teacher (ablation prior)."""
from typing import Tuple

import torch
from mmaction.registry import MODELS
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel, CLIPVisionModelWithProjection

from .hf_image_teacher import HFImageTeacher

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@MODELS.register_module()
class CLIPTeacher(HFImageTeacher):
    """Frozen CLIP (``CLIPVisionModel`` / ``CLIPVisionModelWithProjection``) teacher.

    ViT-B/16 and ViT-L/14 checkpoints run at their ``config.image_size`` (224) by default; with patch 14 that is the
    student's 16x16 grid.

    - ``pooled``: the CLS token after ``post_layernorm``, projected by ``visual_projection`` when ``use_projection``
      (the CLIP image embedding).
    - ``importance``: last layer's CLS -> patch attention averaged over heads, recomputed from that layer's queries
      and keys (``layer_norm1`` of the layer input, then ``q_proj`` / ``k_proj``); the softmax runs over all tokens
      and the patch part is renormalised to sum to 1.

    Args:
        use_projection: Load ``CLIPVisionModelWithProjection`` and return the projected embedding.
        **kwargs: See :class:`HFImageTeacher`. ``mean``/``std`` default to OpenAI CLIP's.
    """

    config_class = CLIPVisionConfig
    default_mean = OPENAI_CLIP_MEAN
    default_std = OPENAI_CLIP_STD

    def __init__(self, use_projection: bool = True, **kwargs) -> None:
        self.use_projection = use_projection
        self.model_class = CLIPVisionModelWithProjection if use_projection else CLIPVisionModel
        super().__init__(**kwargs)

    @property
    def num_cls_tokens(self) -> int:
        """The CLS token."""
        return 1

    @property
    def pooled_dims(self) -> int:
        """Projection width when projecting, hidden width otherwise."""
        return int(self.vision_config.projection_dim) if self.use_projection else self.embed_dims

    def _encoder_layers(self) -> nn.ModuleList:
        return self.model.vision_model.encoder.layers

    def _run_model(self, pixels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        native = int(self.vision_config.image_size)
        out = self.model.vision_model(pixel_values=pixels, interpolate_pos_encoding=pixels.shape[-1] != native)
        pooled = out.pooler_output
        if self.use_projection:
            pooled = self.model.visual_projection(pooled)
        return out.last_hidden_state, pooled

    def _importance(self, last_layer_input: torch.Tensor, last_hidden_state: torch.Tensor) -> torch.Tensor:
        layer = self._encoder_layers()[-1]
        x = layer.layer_norm1(last_layer_input)
        query = layer.self_attn.q_proj(x[:, 0])
        keys = layer.self_attn.k_proj(x)
        attn = self._single_query_attention(query, keys, self.num_heads)
        return attn[:, self.num_cls_tokens:]

"""SigLIP / SigLIP2 vision tower as the Stage-1 image teacher (the paper's default prior)."""
import math
import os
from typing import Optional, Tuple

import torch
from mmaction.registry import MODELS
from torch import nn
from transformers import (AutoConfig, Siglip2VisionConfig, Siglip2VisionModel, SiglipVisionConfig,
                          SiglipVisionModel)

from .hf_image_teacher import HFImageTeacher

_FAMILIES = {
    'siglip2': (Siglip2VisionModel, Siglip2VisionConfig),
    'siglip': (SiglipVisionModel, SiglipVisionConfig),
}


@MODELS.register_module(name=['SigLIP2Teacher', 'SigLIPTeacher'])
class SigLIP2Teacher(HFImageTeacher):
    """Frozen SigLIP2 (``Siglip2VisionModel``) or SigLIP (``SiglipVisionModel``) teacher.

    The released Stage-1 recipe uses SigLIP2-1B/16 at 256 px (16x16 patches per frame, the student's grid at 224 px
    with patch 14), mean/std 0.5, hidden states entering layers ``[23, 26, 30, 33, 36, 39]``
    (``return_interval=3.33``), and the attention-pooling head's output as the pooled target.

    - ``pooled``: the attention-pooling head output (``pooler_output``).
    - ``importance``: attention weights of the head's probe over the patches, averaged over heads: recomputed from
      the probe query and the keys of the head's ``nn.MultiheadAttention`` on the post-layernorm tokens.

    Args:
        variant: 'siglip2' (NaFlex ``Siglip2VisionModel``, fed patchified pixels) or 'siglip'
            (``SiglipVisionModel``). None: read from the checkpoint's config (``pretrained``) or 'siglip2'.
        **kwargs: See :class:`HFImageTeacher`. ``image_size`` defaults to sqrt(num_patches) * patch_size for
            SigLIP2 (256 for the /16 checkpoints) and to ``config.image_size`` for SigLIP.
    """

    default_mean = (0.5, 0.5, 0.5)
    default_std = (0.5, 0.5, 0.5)

    def __init__(self, variant: Optional[str] = None, **kwargs) -> None:
        if variant is None:
            variant = self._detect_variant(kwargs.get('pretrained'))
        if variant not in _FAMILIES:
            raise ValueError(f'variant must be one of {sorted(_FAMILIES)}, got {variant!r}.')
        self.variant = variant
        self.model_class, self.config_class = _FAMILIES[variant]
        super().__init__(**kwargs)
        if not getattr(self.vision_config, 'vision_use_head', True):
            raise ValueError('SigLIP teacher needs the attention-pooling head: set vision_use_head=True.')

    @staticmethod
    def _detect_variant(pretrained: Optional[str]) -> str:
        if pretrained is None or not os.path.isdir(pretrained):
            return 'siglip2'
        model_type = AutoConfig.from_pretrained(pretrained, local_files_only=True).model_type
        return 'siglip' if model_type.startswith('siglip_') or model_type == 'siglip' else 'siglip2'

    def _native_image_size(self) -> int:
        if self.variant == 'siglip2':
            return int(math.isqrt(int(self.vision_config.num_patches))) * self.patch_size
        return int(self.vision_config.image_size)

    @property
    def vision_config(self):
        """Vision config (a full SigLIP checkpoint nests it under ``vision_config``)."""
        return getattr(self.model.config, 'vision_config', self.model.config)

    @property
    def _tower(self) -> nn.Module:
        # transformers 4.x wraps the tower as ``.vision_model``; fall back to the model itself otherwise.
        return getattr(self.model, 'vision_model', self.model)

    def _encoder_layers(self) -> nn.ModuleList:
        return self._tower.encoder.layers

    def _run_model(self, pixels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.variant == 'siglip2':
            return self._run_naflex(pixels)
        else:
            native = int(self.vision_config.image_size)
            out = self.model(pixel_values=pixels, interpolate_pos_encoding=pixels.shape[-1] != native)
        return out.last_hidden_state, out.pooler_output

    def _run_naflex(self, pixels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """SigLIP2 tower on square frames of one size, without padding.

        Same result as ``Siglip2VisionModel(pixel_values, pixel_attention_mask=ones, spatial_shapes)``, but the
        position table is resized once for the whole batch rather than once per frame (which reads every frame's
        shape back from the device), and no all-ones attention mask reaches the encoder or the pooling head, so
        attention keeps its mask-free kernels.

        Args:
            pixels: (F, 3, S, S) frames, S a multiple of the patch size.

        Returns:
            tuple: last hidden state (F, g*g, C) after the post-layernorm, pooled output (F, C).
        """
        tower = self._tower
        embeddings = tower.embeddings
        f, c, s, _ = pixels.shape
        p = self.patch_size
        g = s // p
        # Patch vectors in (p_h, p_w, c) order, patches in raster order, as Siglip2ImageProcessor makes them.
        patches = pixels.reshape(f, c, g, p, g, p).permute(0, 2, 4, 3, 5, 1).reshape(f, g * g, p * p * c)
        weight = embeddings.patch_embedding.weight
        side = embeddings.position_embedding_size
        table = embeddings.position_embedding.weight.reshape(1, side, side, -1).permute(0, 3, 1, 2)
        table = nn.functional.interpolate(table.float(), size=(g, g), mode='bilinear', align_corners=False,
                                          antialias=True)
        positions = table.flatten(2).transpose(1, 2).to(weight.dtype)  # (1, g*g, C)
        hidden = embeddings.patch_embedding(patches.to(weight.dtype)) + positions
        hidden = tower.encoder(inputs_embeds=hidden).last_hidden_state
        last = tower.post_layernorm(hidden)
        return last, tower.head(last)

    def _importance(self, last_layer_input: torch.Tensor, last_hidden_state: torch.Tensor) -> torch.Tensor:
        head = self._tower.head
        attn: nn.MultiheadAttention = head.attention
        c = attn.embed_dim
        w, bias = attn.in_proj_weight, attn.in_proj_bias
        query = nn.functional.linear(head.probe.reshape(1, c), w[:c], bias[:c])
        keys = nn.functional.linear(last_hidden_state, w[c:2 * c], bias[c:2 * c])
        return self._single_query_attention(query.expand(keys.shape[0], c), keys, attn.num_heads)

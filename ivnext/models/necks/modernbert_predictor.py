"""Stage-1 predictor built from the last layers of ModernBERT (transformers)."""
import os.path as osp
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmaction.registry import MODELS
from torch import nn

from ...compat import modernbert_attention_table, use_modernbert_attention
from ..layers import run_blocks
from ..layers.banded_attention import banded_attention
from .base_predictor import BasePredictor

# ModernBERT-Large (answerdotai/ModernBERT-large config.json): the released predictor keeps its last 5 layers.
MODERNBERT_LARGE = dict(
    hidden_size=1024,
    intermediate_size=2624,
    num_attention_heads=16,
    num_hidden_layers=28,
    global_attn_every_n_layers=3,
    local_attention=128,
    global_rope_theta=160000.0,
    local_rope_theta=10000.0,
    max_position_embeddings=8192,
    hidden_activation='gelu',
    norm_eps=1e-5,
    norm_bias=False,
    attention_bias=False,
    mlp_bias=False,
    attention_dropout=0.0,
    mlp_dropout=0.0,
    initializer_range=0.02,
    initializer_cutoff_factor=2.0,
)


@MODELS.register_module()
class ModernBertPredictor(BasePredictor):
    """Latent predictor made of the last ``num_layers`` ModernBERT encoder layers.

    The input is assembled by :class:`BasePredictor` (mask tokens, 3D sin-cos positions, CLS, MLP to the
    ModernBERT width). The layers then run exactly as inside ModernBERT, as the release does: bidirectional
    attention, ModernBERT's own 1D rotary embedding over the sequence position (CLS tokens, then the grid in
    raster order), and for the layers that are local in ModernBERT (``layer_id % global_attn_every_n_layers
    != 0``, e.g. 23, 25, 26 of 28) a sliding window of +-``local_attention // 2`` tokens. Each kept layer
    keeps its original ``layer_id`` and thus its global/local role and rope theta. Attention runs on PyTorch
    SDPA; the local layers attend only inside their window (``local_attention_impl='banded'``).

    Both transformers 4.x (each layer's attention computes its rotary embedding) and 5.x (the model computes it
    once per layer type, held here as ``rotary_emb``, a buffer-only module) run the same maths; the weights and
    their names are the same.

    Weights: ``pretrained='path/to/ModernBERT-large'`` (a local Hugging Face folder, never downloaded) keeps
    the last ``num_layers`` layers of the text model (paper default); otherwise ``model_config`` (overrides
    of the ModernBERT-Large config) builds them with ModernBERT's random initialisation (the no-text-init
    ablation and tests).

    Args:
        in_dims: Encoder width C_enc.
        num_layers: Layers kept from the end of ModernBERT.
        num_cls_tokens: CLS tokens at the front of the encoder output.
        grid_size: Token grid (T', H', W') of the clips.
        pretrained: Local folder of a ModernBERT checkpoint.
        model_config: ModernBertConfig fields overriding ModernBERT-Large, used when ``pretrained`` is None.
        final_norm: Apply ModernBERT's final LayerNorm. The release does not (its diffusion head sees the raw
            residual stream), so the default is False.
        with_cp: Recompute each layer in the backward pass (activation checkpointing).
        local_attention_impl: How the local layers attend. 'banded' (default): block-wise attention to the
            window only (:func:`ivnext.models.layers.banded_attention`), same result as 'dense': SDPA over the
            whole sequence with a window mask, as transformers runs it (21x more score FLOPs at 4100 tokens).
        pos_embed_frames: Rows in time of the stored position table (token-grid frames); None: ``grid_size[0]``
            (see :class:`BasePredictor`).
        init_cfg: MMEngine init config.

    Attributes:
        embed_dims: Output width (ModernBERT hidden size, 1024 for Large).
    """

    def __init__(self, in_dims: int = 768, num_layers: int = 5, num_cls_tokens: int = 4,
                 grid_size: Sequence[int] = (16, 16, 16), pretrained: Optional[str] = None,
                 model_config: Optional[dict] = None, final_norm: bool = False, with_cp: bool = False,
                 local_attention_impl: str = 'banded', pos_embed_frames: Optional[int] = None, init_cfg=None):
        if local_attention_impl not in ('banded', 'dense'):
            raise ValueError(f"local_attention_impl must be 'banded' or 'dense', got {local_attention_impl!r}")
        if pretrained is not None:
            layers, norm, rotary, config = self._load_pretrained(pretrained, num_layers)
        else:
            layers, norm, rotary, config = self._build_random(model_config or {}, num_layers)
        super().__init__(in_dims, config.hidden_size, num_cls_tokens, grid_size, pos_embed_frames,
                         init_cfg=init_cfg)
        self.config = config
        self.num_layers = num_layers
        self.layers = layers
        self.norm = norm if final_norm else nn.Identity()
        self.with_cp = with_cp
        self.local_attention_impl = local_attention_impl
        # transformers 5: the rotary embedding lives at model level (non-persistent buffers only).
        self.rotary_emb = None if modernbert_attention_table() is not None else rotary
        if local_attention_impl == 'banded':  # the kept layers share this config
            function = _banded_sdpa_attention if self.rotary_emb is None else _banded_attention
            use_modernbert_attention(config, BANDED_ATTENTION, function)

    @staticmethod
    def _check_num_layers(num_layers: int, total: int) -> None:
        if not 1 <= num_layers <= total:
            raise ValueError(f'num_layers must be in [1, {total}] (ModernBERT has {total} layers), got {num_layers}')

    @staticmethod
    def _prepare_config(config) -> None:
        # SDPA path with explicit masks; no torch.compile of the MLP (ModernBERT would pick it on GPU).
        use_modernbert_attention(config, 'sdpa')
        config.reference_compile = False

    @classmethod
    def _load_pretrained(cls, pretrained: str, num_layers: int):
        from transformers import ModernBertModel
        if not osp.isdir(pretrained):
            raise FileNotFoundError(f'ModernBertPredictor: pretrained={pretrained!r} is not a local folder. '
                                    'Download answerdotai/ModernBERT-large once (e.g. `huggingface-cli download '
                                    'answerdotai/ModernBERT-large --local-dir <dir>`) and pass that folder, or set '
                                    'pretrained=None to build the layers randomly.')
        try:
            model = ModernBertModel.from_pretrained(pretrained, local_files_only=True, attn_implementation='sdpa',
                                                    dtype=torch.float32)
        except (OSError, ValueError) as err:
            raise FileNotFoundError(f'ModernBertPredictor: could not load a ModernBERT checkpoint from '
                                    f'{pretrained!r} ({err}); the folder needs config.json and the weights.') from err
        config = model.config
        cls._check_num_layers(num_layers, config.num_hidden_layers)
        cls._prepare_config(config)
        layers = nn.ModuleList(list(model.layers)[-num_layers:])
        return layers, model.final_norm, getattr(model, 'rotary_emb', None), config

    @classmethod
    def _build_random(cls, overrides: dict, num_layers: int):
        from transformers import ModernBertConfig
        from transformers.models.modernbert.modeling_modernbert import (ModernBertEncoderLayer,
                                                                        ModernBertPreTrainedModel)
        config = ModernBertConfig(**{**MODERNBERT_LARGE, **overrides})
        total = config.num_hidden_layers
        cls._check_num_layers(num_layers, total)
        cls._prepare_config(config)
        layers = nn.ModuleList([ModernBertEncoderLayer(config, layer_id) for layer_id in range(total - num_layers,
                                                                                               total)])
        norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        rotary = None
        if modernbert_attention_table() is None:  # transformers 5
            from transformers.models.modernbert.modeling_modernbert import ModernBertRotaryEmbedding
            rotary = ModernBertRotaryEmbedding(config)
        # ModernBERT's own initialisation (truncated normal, depth-scaled output projections), run by a
        # parameter-free ModernBertPreTrainedModel on the kept modules.
        initializer = ModernBertPreTrainedModel(config)
        for module in list(layers.modules()) + [norm]:
            initializer._init_weights(module)
        return layers, norm, rotary, config

    def attention_masks(self, length: int, device: torch.device):
        """Rotary positions and the local-attention window for a sequence of ``length`` tokens.

        Returns:
            tuple: position ids (1, L) long and a (1, 1, L, L) bool mask, True where |i - j| <= window / 2
            (None with banded local attention, which needs no mask).
        """
        positions = torch.arange(length, device=device)
        if self.local_attention_impl == 'banded':
            return positions.unsqueeze(0), None
        window = (positions[:, None] - positions[None, :]).abs() <= self.config.local_attention // 2
        return positions.unsqueeze(0), window[None, None]

    def forward_layers(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (B, L, C_pred). Returns (B, L, C_pred)."""
        position_ids, window = self.attention_masks(x.shape[1], x.device)
        if self.rotary_emb is None:  # transformers 4.x: a layer takes positions and returns a tuple
            def hidden_states(layer: nn.Module):
                return lambda h: layer(h, attention_mask=None, sliding_window_mask=window,
                                       position_ids=position_ids)[0]
        else:  # transformers 5: (cos, sin) and the mask per layer type; a layer returns the hidden states
            types = {layer.attention_type for layer in self.layers}
            rotary = {kind: self.rotary_emb(x, position_ids, kind) for kind in types}
            masks = dict(full_attention=None, sliding_attention=window)

            def hidden_states(layer: nn.Module):
                return lambda h: layer(h, attention_mask=masks[layer.attention_type],
                                       position_embeddings=rotary[layer.attention_type])

        x = run_blocks([hidden_states(layer) for layer in self.layers], x, with_cp=self.with_cp and self.training)
        return self.norm(x)


# The name of the banded attention in ModernBERT's attention registry (ivnext.compat.use_modernbert_attention).
BANDED_ATTENTION = 'ivnext_banded_sdpa'


def _banded_sdpa_attention(module: nn.Module, qkv: torch.Tensor, attention_mask: Optional[torch.Tensor],
                           sliding_window_mask: Optional[torch.Tensor], position_ids: Optional[torch.Tensor],
                           local_attention: Tuple[int, int], bs: int, dim: int, **kwargs) -> Tuple[torch.Tensor]:
    """ModernBERT's SDPA attention function with the local layers computed by :func:`banded_attention`.

    Same interface as transformers' ``sdpa_attention_forward`` (registered in ``MODERNBERT_ATTENTION_FUNCTION``):
    rotary embedding, then dense SDPA for global layers and banded attention over +-``local_attention[0]`` tokens
    for local ones.

    Args:
        qkv: (B, L, 3, H, D) packed projections.

    Returns:
        tuple: (B, L, H*D) attention output.
    """
    from transformers.models.modernbert.modeling_modernbert import apply_rotary_pos_emb
    cos, sin = module.rotary_emb(qkv, position_ids=position_ids)
    query, key, value = qkv.transpose(3, 1).unbind(dim=2)  # (B, H, L, D) each
    query, key = apply_rotary_pos_emb(query, key, cos, sin)
    dropout = module.attention_dropout if module.training else 0.0
    if tuple(local_attention) != (-1, -1):
        out = banded_attention(query, key, value, int(local_attention[0]), dropout_p=dropout)
    else:
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=dropout)
    return (out.transpose(1, 2).reshape(bs, -1, dim), )


def _banded_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: Optional[torch.Tensor], dropout: float = 0.0, scaling: Optional[float] = None,
                      sliding_window: Optional[int] = None, **kwargs) -> Tuple[torch.Tensor, None]:
    """The transformers 5 counterpart of :func:`_banded_sdpa_attention` (an ``AttentionInterface`` function).

    transformers 5's ModernBERT applies the rotary embedding before the call and gives local layers
    ``sliding_window = local_attention // 2 + 1`` (flash-attn's exclusive bound), so the half window is one less.

    Args:
        query, key, value: (B, H, L, D), rotary embedding applied.

    Returns:
        tuple: (B, L, H, D) attention output and None (no attention weights).
    """
    if sliding_window is not None:
        out = banded_attention(query, key, value, int(sliding_window) - 1, dropout_p=dropout)
    else:
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=dropout,
                                             scale=scaling)
    return out.transpose(1, 2), None

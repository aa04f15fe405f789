"""Hugging Face transformers encoders as ivnext backbones: other video models and per-frame image models.

:class:`TransformersBackbone` wraps a transformers vision encoder so that it takes mmaction2's clips
(B, C, T, H, W) and returns features in :class:`InternVideoNextViT`'s layout, which the probe heads, the
frozen-backbone recognizer, ``tools/extract_features.py`` and ``ivnext.load_encoder`` consume:

* ``'tokens'``: (B, P + T'H'W', C), the encoder's P prefix tokens (CLS / registers; :attr:`num_cls_tokens`)
  first, then the patch tokens in (t, h, w) order;
* ``'featmap'``: (B, C, T', H', W') patch tokens;
* ``'avg'``: (B, C) mean patch token.

Supported families (``config.json``'s ``model_type`` -> class: input, prefix tokens P, token grid of a
(T, H, W) clip with patch p and tubelet t):

* ``vjepa2`` -> ``VJEPA2Model``: video, P = 0, (T / t, H / p, W / p) (the predictor is skipped);
* ``videomae`` -> ``VideoMAEModel``: video, P = 0, (T / t, H / p, W / p);
* ``timesformer`` -> ``TimesformerModel``: video, P = 1 (CLS), (T, H / p, W / p), reordered from (h, w, t);
* ``vivit`` -> ``VivitModel``: video, P = 1 (CLS), (T / t, H / p, W / p);
* ``videoprism_vision_model`` -> ``VideoPrismVisionModel`` (transformers >= 5): video, P = 0, (T, H / p, W / p);
* ``dinov2`` -> ``Dinov2Model``: frames, P = 1 (CLS); ``dinov2_with_registers``: P = 1 + registers;
* ``siglip_vision_model`` / ``siglip`` -> ``SiglipVisionModel``: frames, P = 0;
* ``siglip2_vision_model`` / ``siglip2`` -> ``Siglip2VisionModel``: frames, P = 0 (fixed-resolution patches);
* ``clip_vision_model`` / ``clip`` -> ``CLIPVisionModel``: frames, P = 1 (CLS).

Image models give the grid (T, H / p, W / p). Image-text folders (``clip``, ``siglip``, ...) give their vision tower.

Video models get (B, T, C, H, W) (transformers' layout); image models get the B * T frames (B * T, C, H, W) one by
one, and their per-frame prefix tokens are averaged over the frames (P clip-level prefix tokens, e.g. the mean
CLS token). The patch tokens are the transformers model's ``last_hidden_state`` exactly (Timesformer's (h, w, t)
order is put into (t, h, w) order).

Normalisation: each model expects its own mean / std (:attr:`mean`, :attr:`std`, on the 0-255 scale as
mmaction2's ``ActionDataPreprocessor``). They come from the folder's ``preprocessor_config.json`` /
``video_preprocessor_config.json`` when present, else from the family's image processor defaults, and can be set
with ``mean=`` / ``std=``. A probe config sets its ``data_preprocessor`` to the same values; ``load_encoder``
does so by itself.
"""
import inspect
import json
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmaction.registry import MODELS
from mmengine.model import BaseModule

from ...utils.json_config import read_config_json

# Normalisation constants of transformers' image processors (0-1 scale).
IMAGENET_DEFAULT = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
IMAGENET_STANDARD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
OPENAI_CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
UNIT_RANGE = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
OUT_TYPES = ('tokens', 'featmap', 'avg')
PREPROCESSOR_FILES = ('video_preprocessor_config.json', 'preprocessor_config.json')


@dataclass(frozen=True)
class Family:
    """How one transformers model family is called and what it returns.

    Attributes:
        model_class: transformers class name of the encoder.
        kind: 'video' (clips (B, T, C, H, W)) or 'frames' (images (B * T, C, H, W)).
        input_name: Forward keyword of the pixels.
        normalization: (mean, std) on the 0-1 scale of the family's processor.
        token_order: 'thw', or 'hwt' for encoders that return patch tokens space-major (Timesformer).
        patchified: The encoder takes flattened (B, N, p * p * C) patches with spatial shapes (SigLIP2).
    """

    model_class: str
    kind: str
    input_name: str = 'pixel_values'
    normalization: Tuple[Tuple[float, ...], Tuple[float, ...]] = IMAGENET_DEFAULT
    token_order: str = 'thw'
    patchified: bool = False


FAMILIES: Dict[str, Family] = {
    'vjepa2': Family('VJEPA2Model', 'video', 'pixel_values_videos'),
    'videomae': Family('VideoMAEModel', 'video'),
    'timesformer': Family('TimesformerModel', 'video', normalization=IMAGENET_STANDARD, token_order='hwt'),
    'vivit': Family('VivitModel', 'video', normalization=IMAGENET_STANDARD),
    'videoprism_vision_model': Family('VideoPrismVisionModel', 'video', 'pixel_values_videos',
                                      normalization=UNIT_RANGE),
    'dinov2': Family('Dinov2Model', 'frames'),
    'dinov2_with_registers': Family('Dinov2WithRegistersModel', 'frames'),
    'siglip_vision_model': Family('SiglipVisionModel', 'frames', normalization=IMAGENET_STANDARD),
    'siglip2_vision_model': Family('Siglip2VisionModel', 'frames', normalization=IMAGENET_STANDARD,
                                   patchified=True),
    'clip_vision_model': Family('CLIPVisionModel', 'frames', normalization=OPENAI_CLIP),
}
# Image-text folders whose vision tower is loaded (transformers reads the tower's config and weights from them).
FAMILY_ALIASES = {'siglip': 'siglip_vision_model', 'siglip2': 'siglip2_vision_model', 'clip': 'clip_vision_model'}


def read_model_type(folder: str) -> Optional[str]:
    """``model_type`` of a transformers model folder's ``config.json`` (None without one)."""
    config = read_config_json(folder)
    model_type = config.get('model_type') if isinstance(config, dict) else None
    return model_type if isinstance(model_type, str) else None


def is_transformers_folder(folder: str) -> bool:
    """Whether ``folder`` holds a transformers model of a family :class:`TransformersBackbone` supports."""
    model_type = read_model_type(folder) if osp.isdir(folder) else None
    return model_type is not None and FAMILY_ALIASES.get(model_type, model_type) in FAMILIES


def family_of(model_type: str) -> Family:
    """The :class:`Family` of a ``model_type`` (aliases of image-text models included).

    Raises:
        KeyError: Unsupported model type; the message lists the supported ones.
    """
    key = FAMILY_ALIASES.get(model_type, model_type)
    if key not in FAMILIES:
        raise KeyError(f'model_type {model_type!r} is not supported by TransformersBackbone; supported: '
                       f'{sorted([*FAMILIES, *FAMILY_ALIASES])}')
    return FAMILIES[key]


def transformers_class(name: str) -> type:
    """A transformers model class by name.

    Raises:
        ImportError: The installed transformers lacks it (VideoPrism needs transformers 5).
    """
    import transformers
    try:
        return getattr(transformers, name)
    except (AttributeError, ModuleNotFoundError) as err:
        raise ImportError(f'transformers {transformers.__version__} has no {name}; install a transformers that '
                          'ships it (VideoPrismVisionModel: transformers >= 5)') from err


def processor_normalization(folder: str) -> Optional[Tuple[Tuple[float, ...], Tuple[float, ...]]]:
    """(mean, std) on the 0-1 scale from a folder's (video) preprocessor config, or None."""
    for name in PREPROCESSOR_FILES:
        path = osp.join(folder, name)
        if osp.isfile(path):
            with open(path) as f:
                cfg = json.load(f)
            if cfg.get('image_mean') is not None and cfg.get('image_std') is not None:
                mean, std = cfg['image_mean'], cfg['image_std']
                mean = [mean] * 3 if isinstance(mean, (int, float)) else mean
                std = [std] * 3 if isinstance(std, (int, float)) else std
                return tuple(float(v) for v in mean), tuple(float(v) for v in std)
    return None


def _pair(value: Union[int, Sequence[int]]) -> Tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[-1]))


@MODELS.register_module()
class TransformersBackbone(BaseModule):
    """A transformers video or image encoder with ivnext's input (B, C, T, H, W) and output layouts.

    Weights come from a local folder (``pretrained``, read with ``local_files_only=True``: nothing is downloaded),
    or the encoder is built with random weights from ``model_config`` (the transformers config's fields). The
    encoder is frozen by default: no parameter requires grad and it stays in eval mode whatever ``train()`` is
    called with (``frozen=False`` trains it).

    Args:
        pretrained: Folder of a transformers model (``config.json`` + weights); its ``model_type`` picks the family.
        model_type: Family (see the module table), for random weights from ``model_config``; with ``pretrained``
            it must agree with the folder (image-text folders such as ``clip`` / ``siglip`` give their vision tower).
        model_config: Fields of the transformers config: the whole encoder when there is no ``pretrained``,
            overrides of the folder's config otherwise.
        out_type: 'tokens' (B, P + T'H'W', C), 'featmap' (B, C, T', H', W') or 'avg' (B, C).
        frozen: Freeze every parameter and keep the encoder in eval mode.
        mean: Per-channel mean (0-255 scale) the encoder expects; default: the folder's processor config or the
            family's.
        std: Per-channel std (0-255 scale), as ``mean``.
        dtype: Parameter dtype ('float32', 'bfloat16', 'float16').
        attn_implementation: transformers attention implementation ('sdpa', 'eager'); None: transformers' default.
        init_cfg: MMEngine init config (e.g. ``Pretrained`` for an ivnext checkpoint of this backbone).
    """

    def __init__(self,
                 pretrained: Optional[str] = None,
                 model_type: Optional[str] = None,
                 model_config: Optional[Dict] = None,
                 out_type: str = 'tokens',
                 frozen: bool = True,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 dtype: str = 'float32',
                 attn_implementation: Optional[str] = None,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None):
        super().__init__(init_cfg=init_cfg)
        if out_type not in OUT_TYPES:
            hint = (" (foreign encoders have no InternVideo-Next clip projector; use 'avg' or 'tokens')"
                    if out_type == 'pooled' else '')
            raise ValueError(f'out_type must be one of {OUT_TYPES}, got {out_type!r}{hint}')
        if pretrained is None and (model_type is None or model_config is None):
            raise ValueError('TransformersBackbone needs pretrained=<local transformers folder>, or model_type and '
                             'model_config=dict(...) for random weights')
        torch_dtype = getattr(torch, dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise ValueError(f"dtype must be 'float32', 'bfloat16' or 'float16', got {dtype!r}")
        extra = dict(attn_implementation=attn_implementation) if attn_implementation else {}
        if pretrained is not None:
            if not osp.isdir(pretrained):
                raise FileNotFoundError(f'pretrained={pretrained!r} is not a local folder; save the transformers '
                                        'model with save_pretrained(folder) (nothing is downloaded here)')
            folder_type = read_model_type(pretrained)
            if folder_type is None:
                raise FileNotFoundError(f'{pretrained} has no config.json with a model_type; it is not a '
                                        'transformers model folder')
            model_type = model_type or folder_type
            if family_of(model_type) is not family_of(folder_type):
                raise ValueError(f'model_type={model_type!r} does not match the folder ({folder_type!r}); '
                                 'leave model_type out')
            self.family = family_of(model_type)
            cls = transformers_class(self.family.model_class)
            self.model = cls.from_pretrained(pretrained, local_files_only=True, dtype=torch_dtype,
                                             **dict(model_config or {}), **extra)
        else:
            self.family = family_of(model_type)
            cls = transformers_class(self.family.model_class)
            config = cls.config_class.from_dict(dict(model_config), **extra)
            self.model = cls(config).to(torch_dtype)
        self.model_type = FAMILY_ALIASES.get(model_type, model_type)
        self.pretrained = pretrained
        self.out_type = out_type
        self.frozen = frozen
        self.hf_config = self.model.config
        self.embed_dims = int(self.hf_config.hidden_size)
        self.tubelet_size, self.patch_size = self._patch_sizes()
        # Prefix tokens (CLS / registers) in front of the patch tokens of 'tokens': the probe heads' num_cls_tokens.
        self.num_cls_tokens = self._prefix_tokens()
        norm = processor_normalization(pretrained) if pretrained else None
        norm = norm or self.family.normalization
        self.mean = tuple(float(v) for v in mean) if mean is not None else tuple(255.0 * v for v in norm[0])
        self.std = tuple(float(v) for v in std) if std is not None else tuple(255.0 * v for v in norm[1])
        params = inspect.signature(self.model.forward).parameters
        self._forward_kwargs = dict(skip_predictor=True) if 'skip_predictor' in params else {}
        self._interpolates = 'interpolate_pos_encoding' in params
        # Interface shared with InternVideoNextViT (heads, extraction and the encoder API read these).
        self.clip_projector = None
        self.clip_embed_dims = None
        if frozen:
            self.model.requires_grad_(False)
            self.model.eval()

    # ------------------------------------------------------------- describe
    @property
    def out_channels(self) -> int:
        """Channels of :meth:`forward`'s output (the token width)."""
        return self.embed_dims

    @property
    def input_layout(self) -> str:
        """What the transformers model is given: 'NTCHW' clips (video models) or 'frames' (B * T images)."""
        return 'NTCHW' if self.family.kind == 'video' else 'frames'

    @property
    def default_num_frames(self) -> int:
        """Frames per clip the encoder was built for (16 for image models)."""
        cfg = self.hf_config
        for name in ('frames_per_clip', 'num_frames'):
            if getattr(cfg, name, None):
                return int(getattr(cfg, name))
        return 16

    @property
    def default_img_size(self) -> int:
        """Side of the input the encoder was built for."""
        cfg = self.hf_config
        for name in ('crop_size', 'image_size'):
            if getattr(cfg, name, None):
                return _pair(getattr(cfg, name))[0]
        if self.family.patchified:
            return int(round(cfg.num_patches**0.5)) * self.patch_size
        return 224

    def _patch_sizes(self) -> Tuple[int, int]:
        cfg = self.hf_config
        if self.family.kind == 'frames':
            return 1, int(cfg.patch_size)
        tubelet = getattr(cfg, 'tubelet_size', 1)
        if isinstance(tubelet, (list, tuple)):  # ViViT / VideoPrism: (t, h, w)
            return int(tubelet[0]), int(tubelet[1])
        return int(tubelet), int(cfg.patch_size)

    def _prefix_tokens(self) -> int:
        if self.model_type in ('timesformer', 'vivit', 'dinov2', 'clip_vision_model'):
            return 1
        if self.model_type == 'dinov2_with_registers':
            return 1 + int(self.hf_config.num_register_tokens)
        return 0

    def export_config(self) -> Dict:
        """Arguments that rebuild this backbone without the original folder (the full transformers config)."""
        config = self.hf_config.to_dict()
        return dict(type='TransformersBackbone', model_type=self.model_type, model_config=config,
                    frozen=self.frozen, mean=list(self.mean), std=list(self.std))

    # ---------------------------------------------------------------- state
    def init_weights(self) -> None:
        """The weights come from ``pretrained`` or the transformers initialisation at build time; only an
        explicit ``init_cfg`` (e.g. a ``Pretrained`` ivnext checkpoint) changes them."""
        if self.init_cfg:
            super().init_weights()

    def train(self, mode: bool = True) -> 'TransformersBackbone':
        super().train(mode)
        if self.frozen:
            self.model.eval()
        return self

    # --------------------------------------------------------------- forward
    def grid_of(self, x: torch.Tensor) -> Tuple[int, int, int]:
        """Token grid (T', H', W') of a clip (B, C, T, H, W)."""
        if x.dim() != 5:
            raise ValueError(f'expected a clip (B, C, T, H, W), got shape {tuple(x.shape)}; mmaction2 pipelines '
                             "need FormatShape(input_format='NCTHW')")
        _, _, t, h, w = x.shape
        return max(1, t // self.tubelet_size), h // self.patch_size, w // self.patch_size

    def _call(self, pixels: torch.Tensor) -> torch.Tensor:
        """``last_hidden_state`` of the transformers model on its own input layout."""
        kwargs = dict(self._forward_kwargs)
        size = tuple(pixels.shape[-2:])
        if self._interpolates and size != _pair(self.default_img_size):
            kwargs['interpolate_pos_encoding'] = True
        if self.family.patchified:
            n, c, h, w = pixels.shape
            p = self.patch_size
            # SigLIP2's processor layout: (n, h/p * w/p, p * p * C), patches row-major, pixels (py, px, channel).
            patches = pixels.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(n, -1, p * p * c)
            kwargs.update(pixel_attention_mask=torch.ones(patches.shape[:2], dtype=torch.long, device=pixels.device),
                          spatial_shapes=torch.tensor([[h // p, w // p]] * n, device=pixels.device))
            pixels = patches
        return self.model(**{self.family.input_name: pixels}, **kwargs).last_hidden_state

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Prefix and patch tokens (B, P + T'H'W', C) of clips (B, C, T, H, W), patches in (t, h, w) order."""
        grid = self.grid_of(x)
        b, c, t, h, w = x.shape
        x = x.to(next(self.model.parameters()).dtype)
        p = self.num_cls_tokens
        if self.family.kind == 'video':
            hidden = self._call(x.transpose(1, 2).contiguous())  # (B, T, C, H, W)
            prefix, patches = hidden[:, :p], hidden[:, p:]
            if self.family.token_order == 'hwt':
                patches = patches.reshape(b, grid[1], grid[2], grid[0], -1).permute(0, 3, 1, 2, 4).flatten(1, 3)
        else:
            hidden = self._call(x.transpose(1, 2).reshape(b * t, c, h, w))  # (B * T, P + H'W', C)
            prefix = hidden[:, :p].reshape(b, t, p, hidden.shape[-1]).mean(1)
            patches = hidden[:, p:].reshape(b, t * hidden[:, p:].shape[1], -1)
        if patches.shape[1] != grid[0] * grid[1] * grid[2]:
            raise ValueError(f'{self.model_type} returned {patches.shape[1]} patch tokens for a {tuple(x.shape)} clip, '
                             f'expected the grid {grid}; check num_frames / img_size against the encoder config')
        return torch.cat([prefix, patches], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of clips in the configured ``out_type``.

        Args:
            x: Clips (B, C, T, H, W), normalised with :attr:`mean` / :attr:`std`.

        Returns:
            Tensor: (B, P + T'H'W', C) for 'tokens', (B, C, T', H', W') for 'featmap', (B, C) for 'avg'.
        """
        grid = self.grid_of(x)
        tokens = self.forward_tokens(x)
        if self.out_type == 'tokens':
            return tokens
        patches = tokens[:, self.num_cls_tokens:]
        if self.out_type == 'avg':
            return patches.mean(1)
        return patches.transpose(1, 2).reshape(x.shape[0], -1, *grid)

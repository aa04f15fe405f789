"""Video-text alignment on a frozen encoder and a frozen text tower (the authors' recipe, InternVideo2-style)."""
import contextlib
import copy
import zlib
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmengine.model import BaseModel
from mmengine.structures import InstanceData
from torch import nn

from ivnext.models.layers.attention_pooling import AttentionPoolingBlock

PRECISIONS = ('auto', 'bf16', 'fp32')


@MODELS.register_module()
class VideoTextAligner(BaseModel):
    """A frozen InternVideo-Next encoder and a frozen text tower aligned by a small trainable head.

    The recipe (authors' answer in OpenGVLab/InternVideo #318, "as for InternVideo2-L"; the values are those of
    InternVideo2's CLIP configs: ``freeze_vision=True, open_vision_clip_projector=True, freeze_text=True,
    open_text_projection=False, temp=temp_min=1/100, align_dim=512``):

    - video: clip (B, 3, T, H, W) -> frozen encoder -> tokens (B, P + N, C) -> **projector** (the encoder's
      attention-pooling clip projector, a trainable copy initialised from the encoder's weights) -> (B, C')
      -> **alignment layer** (LayerNorm + Linear) -> (B, D);
    - text: captions -> frozen text tower -> (B, D_t) [-> optional trainable Linear to D when ``text_projection``];
    - symmetric InfoNCE with a **learnable temperature** (clamped at ``min_temperature``), over the features of
      every rank (:class:`VideoTextContrastiveLoss`).

    ``D`` is ``align_dim``; by default the text tower's width, so the video side is aligned into the frozen text
    space (512 for MobileCLIP-B in the recipe).

    The frozen encoder and text tower are held outside the module tree: ``state_dict()``, checkpoints and the
    optimizer see only the trainable parts (projector, alignment layer, temperature, text projection), while
    ``.to()`` / ``.cuda()`` move the towers too and ``train()`` leaves them in eval mode.

    Args:
        encoder: ``ivnext.load_encoder`` arguments: ``source`` (preset name, folder, weights file or Hub id) and its
            keywords (``pretrained``, ``trust_checkpoint``, ``prefix``, ``num_frames``, ...).
        text_tower: Config of a text tower (``TransformersTextTower`` / ``OpenCLIPTextTower``).
        align_dim: Width D of the shared space (default: the text tower's width).
        text_projection: Train a Linear from the text tower's width to ``align_dim`` (needed when they differ).
        projector_heads: Heads of a projector built from scratch, for an encoder without a clip projector
            (default: the encoder's ``clip_num_heads``, else 16 when it divides the width, else 1).
        projector_dims: Output width of such a projector (default: the encoder's width).
        temperature: Initial softmax temperature (recipe: 1/100, "as in ViCLIP").
        min_temperature: Lower clamp of the temperature, applied before each loss (recipe: 1/100).
        loss: Config of the contrastive loss.
        precision: 'auto' (bf16 autocast for the video side on CUDA, fp32 on CPU), 'bf16' or 'fp32'.
        zero_shot: Optional ``dict(class_names=FILE, templates=[...])``: ``predict`` then scores clips against the
            class prompts (``pred_score`` for mmaction2's ``AccMetric``) instead of returning retrieval features.
        data_preprocessor: mmaction2 data preprocessor config (default: ``ActionDataPreprocessor`` with the
            encoder's mean / std, NCTHW).
        init_cfg: MMEngine init config.
    """

    def __init__(self, encoder: Dict, text_tower: Dict, align_dim: Optional[int] = None,
                 text_projection: bool = False, projector_heads: Optional[int] = None,
                 projector_dims: Optional[int] = None, temperature: float = 0.01, min_temperature: float = 0.01,
                 loss: Optional[Dict] = None, precision: str = 'auto', zero_shot: Optional[Dict] = None,
                 data_preprocessor: Optional[Dict] = None, init_cfg: Optional[Dict] = None):
        if not isinstance(encoder, dict) or 'source' not in encoder:
            raise ValueError("encoder must be a dict of ivnext.load_encoder arguments with a 'source' (preset, folder, "
                             f"weights file or Hub id), got {encoder!r}")
        video_encoder = self._load_encoder(dict(encoder))
        if data_preprocessor is None:  # the encoder's own normalisation of 0-255 clips
            prep = video_encoder.preprocessing
            data_preprocessor = dict(type='mmaction.ActionDataPreprocessor', mean=list(prep.mean),
                                     std=list(prep.std), format_shape='NCTHW')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
        if not 0 < min_temperature <= temperature:
            raise ValueError(f'need 0 < min_temperature <= temperature, got {min_temperature} and {temperature}')
        self.encoder_cfg = dict(encoder)
        self.text_tower_cfg = dict(text_tower)
        self.precision = precision
        self.min_temperature = float(min_temperature)
        tower = MODELS.build(copy.deepcopy(self.text_tower_cfg))
        video_encoder.requires_grad_(False).eval()
        tower.requires_grad_(False).eval()
        # Not submodules: kept out of state_dict(), checkpoints and the optimizer (see the class docstring).
        self._frozen = dict(encoder=video_encoder, text_tower=tower)

        backbone = video_encoder.backbone
        source_projector = getattr(backbone, 'clip_projector', None)
        if source_projector is not None and projector_dims in (None, backbone.clip_embed_dims):
            self.projector = copy.deepcopy(source_projector)
            video_dims, heads = int(backbone.clip_embed_dims), None
        else:
            width = int(backbone.embed_dims)
            heads = projector_heads or getattr(backbone, 'clip_num_heads', None) or (16 if width % 16 == 0 else 1)
            video_dims = int(projector_dims or width)
            self.projector = AttentionPoolingBlock(width, heads, video_dims)
        self.projector_args = dict(projector_heads=heads, projector_dims=video_dims)
        self.projector.requires_grad_(True)
        self.align_dim = int(align_dim or tower.out_dims)
        self.align = nn.Sequential(nn.LayerNorm(video_dims), nn.Linear(video_dims, self.align_dim))
        if tower.out_dims != self.align_dim and not text_projection:
            raise ValueError(f'align_dim {self.align_dim} differs from the text tower width {tower.out_dims}: set '
                             'text_projection=True (a trainable Linear on the text side) or align_dim=None')
        self.text_proj = nn.Linear(tower.out_dims, self.align_dim) if text_projection else None
        self.temperature = nn.Parameter(torch.tensor(float(temperature)))
        self.loss_module = MODELS.build(loss or dict(type='VideoTextContrastiveLoss'))
        self.zero_shot_cfg = zero_shot
        self._class_embeds: Optional[torch.Tensor] = None
        self._class_names: Optional[List[str]] = None

    @staticmethod
    def _load_encoder(cfg: Dict):
        from ivnext.api import load_encoder
        cfg = dict(cfg)
        return load_encoder(cfg.pop('source'), **cfg)

    # ------------------------------------------------------------------ frozen towers
    @property
    def encoder(self):
        """The frozen :class:`ivnext.api.VideoEncoder`."""
        return self._frozen['encoder']

    @property
    def text_tower(self):
        """The frozen text tower (:class:`FrozenTextTower`)."""
        return self._frozen['text_tower']

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        for module in self._frozen.values():
            module._apply(fn, *args, **kwargs)
        return self

    def train(self, mode: bool = True) -> 'VideoTextAligner':
        super().train(mode)
        for module in self._frozen.values():
            module.eval()
        return self

    @property
    def device(self) -> torch.device:
        return self.temperature.device

    def _autocast(self):
        if self.precision == 'fp32' or (self.precision == 'auto' and self.device.type != 'cuda'):
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    # ------------------------------------------------------------------ embeddings
    @torch.no_grad()
    def video_tokens(self, clips: torch.Tensor) -> torch.Tensor:
        """Frozen encoder tokens of clips.

        Args:
            clips: (B, 3, T, H, W) normalised clips.

        Returns:
            Tensor: (B, P + N, C) tokens (P prefix / CLS tokens), in the autocast dtype.
        """
        with self._autocast():
            return self.encoder(clips, output='tokens')

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Video embeddings from frozen encoder tokens (the trainable video side).

        Args:
            tokens: (B, P + N, C) encoder tokens (see :meth:`video_tokens`).

        Returns:
            Tensor: (B, D) float32, not normalised.
        """
        with self._autocast():
            return self.align(self.projector(tokens)).float()

    def embed_video(self, clips: torch.Tensor) -> torch.Tensor:
        """Video embeddings (B, D) of clips (B, 3, T, H, W) or (B, V, 3, T, H, W) (the V views averaged)."""
        views = 1
        if clips.dim() == 6:
            views = clips.shape[1]
            clips = clips.flatten(0, 1)
        embeds = self.embed_tokens(self.video_tokens(clips))
        return embeds.view(-1, views, embeds.shape[-1]).mean(1)

    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Text embeddings (N, D) float32 of N captions (tower features from its cache where possible)."""
        feats = self.text_tower.encode(list(texts), device=self.device)
        return self.text_proj(feats) if self.text_proj is not None else feats

    def clamp_temperature(self) -> None:
        """Clamp the learnable temperature at ``min_temperature`` in place (the recipe does it every step)."""
        with torch.no_grad():
            self.temperature.clamp_(min=self.min_temperature)

    def contrastive_loss(self, video: torch.Tensor, texts: Sequence[str],
                         ids: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Loss of video embeddings (B, D) against their captions (B strings); ``ids`` (B,) mark shared videos."""
        self.clamp_temperature()
        loss = self.loss_module(video, self.embed_text(texts), self.temperature, ids)
        return dict(loss_vtc=loss, temperature=self.temperature.detach().clone())

    # ------------------------------------------------------------------ zero-shot classes
    def set_classes(self, names: Sequence[str], templates: Sequence[str] = ('a video of {}.', )) -> torch.Tensor:
        """Embed class prompts for zero-shot classification (the mean over templates of each class).

        Args:
            names: C class names (already readable: 'playing guitar').
            templates: Prompt templates with one ``{}``.

        Returns:
            Tensor: (C, D) normalised class embeddings, kept for :meth:`predict`.
        """
        from ivnext.evaluation.class_prompts import class_prompts
        prompts = class_prompts(names, templates)
        with torch.no_grad():
            embeds = torch.stack([F.normalize(self.embed_text(p), dim=-1).mean(0) for p in prompts])
        self._class_embeds = F.normalize(embeds, dim=-1)
        return self._class_embeds

    def _zero_shot_embeds(self) -> torch.Tensor:
        """Class embeddings of the ``zero_shot`` config, recomputed per call (the tower's features come from its
        cache; a trainable text projection may have changed since the last call)."""
        cfg = dict(self.zero_shot_cfg)
        if 'class_names' not in cfg:
            raise KeyError(f"zero_shot needs 'class_names' (a class-name file), got {cfg!r}")
        if self._class_names is None:
            from ivnext.evaluation.class_prompts import read_class_names
            self._class_names = read_class_names(cfg['class_names'])
        return self.set_classes(self._class_names, cfg.get('templates', ('a video of {}.', )))

    # ------------------------------------------------------------------ BaseModel
    @staticmethod
    def _texts(data_samples) -> List[str]:
        texts = []
        for i, sample in enumerate(data_samples or []):
            text = sample.metainfo.get('text', sample.get('text', None))
            if text is None:
                raise KeyError(f'data sample {i} has no caption: add "text" to PackActionInputs(meta_keys=...) in the '
                               'pipeline (VideoTextDataset provides it)')
            texts.append(text if isinstance(text, str) else ' '.join(text))
        return texts

    @staticmethod
    def _video_ids(data_samples, device) -> Optional[torch.Tensor]:
        names = [s.metainfo.get('filename') for s in data_samples]
        if any(n is None for n in names):
            return None
        return torch.tensor([zlib.crc32(str(n).encode()) for n in names], dtype=torch.long, device=device)

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = 'tensor'):
        """mmaction2 entry point.

        Args:
            inputs: (B, V, 3, T, H, W) clips from ``ActionDataPreprocessor`` (NCTHW).
            data_samples: Samples whose metainfo holds the caption (``text``) and video ``filename``.
            mode: 'loss' (dict with ``loss_vtc``), 'predict' (samples with ``features`` for retrieval metrics,
                or ``pred_score`` with ``zero_shot``) or 'tensor' (video embeddings (B, D)).
        """
        if mode == 'tensor':
            return self.embed_video(inputs)
        if mode == 'loss':
            return self.contrastive_loss(self.embed_video(inputs), self._texts(data_samples),
                                         self._video_ids(data_samples, self.device))
        if mode == 'predict':
            video = self.embed_video(inputs)
            if self.zero_shot_cfg:
                logits = F.normalize(video, dim=-1) @ self._zero_shot_embeds().t() / self.temperature.detach()
                for sample, score in zip(data_samples, logits.softmax(-1)):
                    sample.set_pred_score(score)
                return data_samples
            text = self.embed_text(self._texts(data_samples))
            for sample, v, t in zip(data_samples, video, text):
                sample.features = InstanceData(video_feature=v.detach(), text_feature=t.detach())
            return data_samples
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def trainable_state_dict(self) -> Dict[str, torch.Tensor]:
        """The trainable tensors (projector, alignment layer, temperature, text projection) on CPU."""
        return {k: v.detach().to('cpu').contiguous().clone() for k, v in self.state_dict().items()
                if not k.startswith('data_preprocessor.')}


def describe_towers(model: VideoTextAligner) -> Dict[str, Union[Dict, int, float, bool, str]]:
    """The constructor arguments that rebuild ``model`` around its saved trainable tensors."""
    return dict(encoder=model.encoder_cfg, text_tower=model.text_tower.describe(), align_dim=model.align_dim,
                text_projection=model.text_proj is not None, **model.projector_args,
                min_temperature=model.min_temperature, precision=model.precision)

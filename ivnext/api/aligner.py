"""A video-text aligner ready to use: embed videos and captions in one space, compare them, save and load it.

Example::

    import ivnext
    aligner = ivnext.load_aligner('work_dirs/my_aligner')             # a folder written by save_pretrained
    videos = aligner.encode_video(['a.mp4', 'b.mp4'])                 # (2, D), L2-normalised
    query = aligner.encode_text(['a dog catches a frisbee'])          # (1, D)
    aligner.similarity(query, videos)                                 # (1, 2) cosine similarities
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from .encoder import VideoInput

CONFIG_NAME = 'config.json'
WEIGHTS_NAME = 'model.safetensors'
MODEL_TYPE = 'ivnext-video-text-aligner'
TOWER_ALIASES = {'mobileclip-b': dict(type='OpenCLIPTextTower', model_name='MobileCLIP-B')}


def _tower_config(text_tower: Union[str, Dict]) -> Dict:
    if isinstance(text_tower, dict):
        return dict(text_tower)
    if str(text_tower).lower() in TOWER_ALIASES:
        return dict(TOWER_ALIASES[str(text_tower).lower()])
    return dict(type='TransformersTextTower', pretrained=str(text_tower))


def _encoder_config(encoder: Union[str, os.PathLike, Dict]) -> Dict:
    return dict(encoder) if isinstance(encoder, dict) else dict(source=str(encoder))


class Aligner:
    """A trained (or fresh) :class:`ivnext.models.algorithms.VideoTextAligner` with a small API.

    Args:
        model: The aligner module.
    """

    def __init__(self, model):
        self.model = model.eval()

    @property
    def encoder(self):
        """The frozen :class:`VideoEncoder` (its ``preprocessing`` says how videos are sampled)."""
        return self.model.encoder

    @property
    def text_tower(self):
        return self.model.text_tower

    @property
    def device(self) -> torch.device:
        return self.model.device

    def to(self, device: Union[str, torch.device]) -> 'Aligner':
        self.model.to(device)
        return self

    @torch.no_grad()
    def encode_video(self, video: Union[VideoInput, Sequence[VideoInput]], batch_size: int = 8,
                     **encode_kwargs) -> torch.Tensor:
        """Embed videos in the shared space.

        Args:
            video: A file path or an array of frames (N, H, W, 3) (one clip over the whole video, or windows with
                ``stride=...``: see :meth:`VideoEncoder.encode`); a list of those (one clip each); or prepared
                clips (B, 3, T, H, W) float (see :meth:`VideoEncoder.preprocess`).
            batch_size: Clips per forward pass.
            **encode_kwargs: :meth:`VideoEncoder.encode` options (``stride``, ``stride_unit``, ``backend``, ...).

        Returns:
            Tensor: (N, D) L2-normalised float32 on CPU: one row per video of a list, per window, or per clip.
        """
        if isinstance(video, (list, tuple)):
            if not video:
                raise ValueError('encode_video got an empty list of videos')
            return torch.cat([self.encode_video(v, batch_size, **encode_kwargs) for v in video])
        if isinstance(video, torch.Tensor) and video.dim() == 5 and video.shape[1] == 3 and video.is_floating_point():
            chunks = [self.model.embed_video(video[i:i + batch_size].to(self.device))
                      for i in range(0, len(video), batch_size)]
            return F.normalize(torch.cat(chunks), dim=-1).cpu()
        tokens = self.encoder.encode(video, output='tokens', batch_size=batch_size, **encode_kwargs).features
        chunks = [self.model.embed_tokens(tokens[i:i + batch_size].to(self.device))
                  for i in range(0, len(tokens), batch_size)]
        return F.normalize(torch.cat(chunks), dim=-1).cpu()

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed captions (a list of strings) in the shared space: (N, D) L2-normalised float32 on CPU."""
        if isinstance(texts, str):
            texts = [texts]
        return F.normalize(self.model.embed_text(list(texts)), dim=-1).cpu()

    @staticmethod
    def similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Cosine similarities (N, M) of embeddings a (N, D) and b (M, D) (e.g. captions x videos)."""
        return F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).t()

    def search(self, query: str, videos: torch.Tensor) -> np.ndarray:
        """Indices of ``videos`` (N, D) embeddings (from :meth:`encode_video`), best match of the sentence ``query``
        first."""
        scores = self.similarity(self.encode_text([query]), videos)[0]
        return torch.argsort(scores, descending=True).numpy()

    def config_dict(self) -> Dict:
        """``config.json`` content: what rebuilds the towers and the trainable parts."""
        import ivnext
        from ivnext.models.algorithms.video_text_aligner import describe_towers
        return dict(model_type=MODEL_TYPE, ivnext_version=ivnext.__version__, aligner=describe_towers(self.model))

    def save_pretrained(self, folder: str) -> List[str]:
        """Write ``config.json`` (both towers named, the trainable parts' sizes) and ``model.safetensors`` (only the
        trainable tensors: projector, alignment layer, temperature, text projection).

        Returns:
            list: The written paths.
        """
        from safetensors.torch import save_file
        os.makedirs(folder, exist_ok=True)
        weights = osp.join(folder, WEIGHTS_NAME)
        save_file(self.model.trainable_state_dict(), weights, metadata=dict(format='pt', model_type=MODEL_TYPE))
        config = osp.join(folder, CONFIG_NAME)
        with open(config, 'w') as f:
            json.dump(self.config_dict(), f, indent=2)
        return [config, weights]


def _build(aligner_cfg: Dict, device) -> 'Aligner':
    from mmaction.registry import MODELS
    model = MODELS.build(dict(type='VideoTextAligner', **aligner_cfg))
    return Aligner(model.to(device))


def _read_folder_config(folder: str) -> Dict:
    path = osp.join(folder, CONFIG_NAME)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{folder} has no {CONFIG_NAME}; pass a folder written by Aligner.save_pretrained')
    with open(path, encoding='utf-8') as f:
        config = json.load(f)
    if not isinstance(config, dict) or config.get('model_type') != MODEL_TYPE:
        got = config.get('model_type') if isinstance(config, dict) else type(config).__name__
        raise ValueError(f'{path}: model_type must be {MODEL_TYPE!r}, got {got!r}; an encoder folder loads with '
                         'ivnext.load_encoder')
    if not isinstance(config.get('aligner'), dict):
        raise ValueError(f'{path}: "aligner" must be an object of VideoTextAligner arguments; save the aligner again')
    return config['aligner']


def load_aligner(source: Optional[str] = None, *, encoder: Union[str, Dict, None] = None,
                 text_tower: Union[str, Dict, None] = None, device: Union[str, torch.device] = 'cpu',
                 **model_kwargs) -> Aligner:
    """Load a saved aligner, or build a fresh one around two towers.

    Args:
        source: A folder written by :meth:`Aligner.save_pretrained`. None: build a new aligner (trainable parts
            initialised: the projector from the encoder's clip projector, the rest at random).
        encoder: The video encoder: an ``ivnext.load_encoder`` source (preset, folder, weights file, Hub id) or a
            dict of its arguments with ``source``. Replaces the saved one (a moved folder, the same weights).
        text_tower: A transformers folder, ``'all-minilm-l6-v2'``, a Hub id in the local cache, ``'mobileclip-b'``
            (open_clip), or a text tower config dict. Replaces the saved one.
        device: Where to put the model.
        **model_kwargs: Further :class:`VideoTextAligner` arguments for a new aligner (``align_dim``,
            ``text_projection``, ``temperature``, ``precision``, ...).

    Returns:
        Aligner: in eval mode.
    """
    if source is None:
        if encoder is None or text_tower is None:
            raise ValueError('a new aligner needs both encoder= and text_tower=; or pass a saved folder as source')
        return _build(dict(encoder=_encoder_config(encoder), text_tower=_tower_config(text_tower), **model_kwargs),
                      device)
    if model_kwargs:
        raise TypeError(f'{sorted(model_kwargs)} apply to a new aligner only; a saved one keeps its config.json')
    source = str(source)
    cfg = _read_folder_config(source)
    if encoder is not None:
        cfg['encoder'] = _encoder_config(encoder)
    if text_tower is not None:
        cfg['text_tower'] = _tower_config(text_tower)
    aligner = _build(cfg, 'cpu')
    from safetensors.torch import load_file
    weights = osp.join(source, WEIGHTS_NAME)
    if not osp.isfile(weights):
        raise FileNotFoundError(f'{source} has no {WEIGHTS_NAME}; save the aligner again')
    try:
        aligner.model.load_state_dict(load_file(weights), strict=True)
    except RuntimeError as err:
        raise ValueError(f'{weights} does not fit {osp.join(source, CONFIG_NAME)} ({" ".join(str(err).split())[:400]})'
                         '; save the aligner again') from None
    return aligner.to(device)


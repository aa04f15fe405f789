"""A ready-to-use InternVideo-Next encoder: weights plus the preprocessing they expect.

:class:`VideoEncoder` wraps :class:`InternVideoNextViT` with its input pipeline (frame sampling, resize, centre
crop, normalisation) and encodes a video file, an array of frames or prepared clips, as one clip or as sliding
windows with timestamps. :meth:`VideoEncoder.save_pretrained` writes ``config.json`` + ``model.safetensors``;
:meth:`VideoEncoder.from_pretrained` reads them back exactly.
"""
import contextlib
import hashlib
import json
import logging
import os
import os.path as osp
from dataclasses import asdict, dataclass
from typing import Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ivnext.models.backbones import InternVideoNextViT, TransformersBackbone
from ivnext.utils.json_config import read_config_json
from ivnext.video import VideoReader, open_video, plan_windows, uniform_clip_by_time

CONFIG_NAME = 'config.json'
WEIGHTS_NAME = 'model.safetensors'
MODEL_TYPE = 'ivnext-video-encoder'
# The public API logs through the standard library only (warnings reach stderr, nothing else is printed).
API_LOGGER = logging.getLogger('ivnext.api')
OUTPUTS = ('pooled', 'avg', 'tokens')
VideoInput = Union[str, os.PathLike, np.ndarray, torch.Tensor]


@dataclass
class Preprocessing:
    """How frames become model input (the probe / test pipelines' values by default).

    Attributes:
        num_frames: Frames per clip T.
        frame_interval: Source frames between sampled frames at the video's average frame rate, when ``fps`` is
            None (sampled by time, so a variable-frame-rate video is sampled evenly in real time).
        fps: Sampling rate in frames per second; when set it replaces ``frame_interval`` (same real-time rate
            on every video, variable frame rate included).
        resize: Short side after resizing (bilinear).
        crop: Side of the centre crop.
        mean: Per-channel mean on the 0-255 scale (RGB).
        std: Per-channel std on the 0-255 scale (RGB).
    """

    num_frames: int = 16
    frame_interval: int = 4
    fps: Optional[float] = None
    resize: int = 224
    crop: int = 224
    mean: Tuple[float, float, float] = (123.675, 116.28, 103.53)
    std: Tuple[float, float, float] = (58.395, 57.12, 57.375)

    def __post_init__(self) -> None:
        self.mean, self.std = tuple(float(v) for v in self.mean), tuple(float(v) for v in self.std)
        if self.crop > self.resize:
            raise ValueError(f'preprocessing crop {self.crop} is larger than the resized short side {self.resize}')


@dataclass
class VideoFeatures:
    """Features of one video.

    Attributes:
        features: (W, D) for 'pooled' / 'avg', (W, 4 + T'H'W', C) for 'tokens'; W windows (1 for a single clip).
        starts: (W,) start of each window (seconds, or frame numbers when the video's rate is unknown).
        ends: (W,) end of each window (last frame + one sampling period), same unit.
        frame_indices: (W, T) source frame indices of each window.
        time_unit: 'seconds' or 'frames'.
        source_fps: Average frame rate of the source (0 when unknown).
        num_source_frames: Frames in the source video.
        backend: Decoding backend used ('' for arrays and tensors).
        sample_fps: Rate of the sampled frames inside windows (0 for a single clip over the whole video).
    """

    features: torch.Tensor
    starts: Optional[np.ndarray] = None
    ends: Optional[np.ndarray] = None
    frame_indices: Optional[np.ndarray] = None
    time_unit: str = 'seconds'
    source_fps: float = 0.0
    num_source_frames: int = 0
    backend: str = ''
    sample_fps: float = 0.0


class ArrayVideo(VideoReader):
    """Frames already in memory, (N, H, W, 3) uint8 RGB, behind the reader interface."""

    backend = ''

    def __init__(self, frames: Union[np.ndarray, torch.Tensor], fps: Optional[float] = None):
        super().__init__('<array>')
        if isinstance(frames, torch.Tensor):
            frames = frames.detach().cpu().numpy()
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f'an array video must be (N, H, W, 3) RGB frames, got shape {frames.shape}')
        self.frames = frames
        self.timestamps = np.arange(len(frames), dtype=np.float64) / (fps if fps else 1.0)

    def _decode_sorted(self, indices: np.ndarray) -> np.ndarray:
        return self.frames[indices]


class VideoEncoder(nn.Module):
    """InternVideo-Next encoder (or a transformers encoder behind :class:`TransformersBackbone`) with its
    preprocessing.

    Args:
        encoder: :class:`InternVideoNextViT` constructor arguments (``arch`` as a dict of sizes), or
            ``dict(type='TransformersBackbone', ...)`` with that class's arguments.
        preprocessing: Frame sampling and image preprocessing.
    """

    def __init__(self, encoder: Dict, preprocessing: Optional[Preprocessing] = None):
        super().__init__()
        self.encoder_config = dict(encoder)
        self.preprocessing = preprocessing or Preprocessing()
        kwargs = dict(self.encoder_config)
        backbone_type = kwargs.pop('type', 'InternVideoNextViT')
        if backbone_type == 'TransformersBackbone':
            kwargs.update(out_type='tokens')
            self.backbone = TransformersBackbone(**kwargs)
        elif backbone_type == 'InternVideoNextViT':
            kwargs.update(out_type='tokens', out_indices=-1)
            self.backbone = InternVideoNextViT(**kwargs)
        else:
            raise ValueError(f"encoder type must be 'InternVideoNextViT' or 'TransformersBackbone', got "
                             f'{backbone_type!r}')
        self.eval()

    # ---------------------------------------------------------------- model
    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def weights_fingerprint(self) -> str:
        """Identity of the encoder's weights: SHA-256 (first 16 hex digits) of its tensors' names, shapes, dtypes
        and bytes, the same on every device."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self.backbone.state_dict().items()):
            flat = tensor.detach().to('cpu').contiguous().reshape(-1)
            digest.update(f'{name}:{flat.dtype}:{tuple(tensor.shape)};'.encode())
            digest.update(flat.view(torch.uint8).numpy())
        return digest.hexdigest()[:16]

    @property
    def has_projector(self) -> bool:
        """True when the attention-pooling clip projector exists (needed for 'pooled' features)."""
        return getattr(self.backbone, 'clip_projector', None) is not None

    def feature_dim(self, output: str = 'pooled') -> int:
        """Width of ``output`` features."""
        self._check_output(output)
        return self.backbone.clip_embed_dims if output == 'pooled' else self.backbone.embed_dims

    def _check_output(self, output: str) -> None:
        if output not in OUTPUTS:
            raise ValueError(f'output must be one of {OUTPUTS}, got {output!r}')
        if output == 'pooled' and not self.has_projector:
            raise ValueError("output='pooled' needs the clip projector, which these weights do not have; use "
                             "output='avg' or 'tokens'")

    def forward(self, clips: torch.Tensor, output: str = 'pooled') -> torch.Tensor:
        """Features of prepared clips.

        Args:
            clips: (B, 3, T, H, W) normalised clips (see :meth:`preprocess`).
            output: 'pooled' (B, clip dims), 'avg' (B, C) mean patch token, or 'tokens' (B, P + T'H'W', C) with
                the encoder's P prefix tokens (``backbone.num_cls_tokens``: 4 CLS tokens for InternVideo-Next).
        """
        self._check_output(output)
        tokens = self.backbone(clips)
        if output == 'tokens':
            return tokens
        if output == 'avg':
            return tokens[:, self.backbone.num_cls_tokens:].mean(1)
        return self.backbone.pool(tokens)

    def preprocess(self, frames: Union[np.ndarray, torch.Tensor]) -> torch.Tensor:
        """Resize the short side, centre-crop and normalise.

        Args:
            frames: (B, T, H, W, 3) RGB, uint8 or float on the 0-255 scale.

        Returns:
            Tensor: (B, 3, T, crop, crop) float32 on the encoder's device.
        """
        frames = torch.as_tensor(frames).to(self.device)
        if frames.dim() != 5 or frames.shape[-1] != 3:
            raise ValueError(f'frames must be (B, T, H, W, 3), got shape {tuple(frames.shape)}')
        b, t, h, w, _ = frames.shape
        p = self.preprocessing
        x = frames.reshape(b * t, h, w, 3).permute(0, 3, 1, 2).float()
        scale = p.resize / min(h, w)
        size = (max(p.crop, round(h * scale)), max(p.crop, round(w * scale)))
        if size != (h, w):
            x = F.interpolate(x, size=size, mode='bilinear', align_corners=False)
        top, left = (size[0] - p.crop) // 2, (size[1] - p.crop) // 2
        x = x[:, :, top:top + p.crop, left:left + p.crop]
        mean = torch.tensor(p.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(p.std, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
        return x.reshape(b, t, 3, p.crop, p.crop).permute(0, 2, 1, 3, 4).contiguous()

    def autocast(self, precision: str = 'auto'):
        """Autocast context: bf16 on CUDA by default ('auto'), or 'bf16' / 'fp16' / 'fp32'."""
        if precision not in ('auto', 'bf16', 'fp16', 'fp32'):
            raise ValueError(f"precision must be 'auto', 'bf16', 'fp16' or 'fp32', got {precision!r}")
        if self.device.type != 'cuda' or precision == 'fp32':
            return contextlib.nullcontext()
        dtype = torch.float16 if precision == 'fp16' else torch.bfloat16
        return torch.autocast('cuda', dtype=dtype)

    # --------------------------------------------------------------- encode
    def plan(self, reader: VideoReader, stride: Optional[float] = None, stride_unit: str = 'frames',
             window: Optional[float] = None, window_unit: str = 'frames', include_tail: bool = False):
        """Frame indices and times of the clip(s) :meth:`encode` takes from ``reader``.

        Returns:
            WindowPlan: one clip spread over the whole video when ``stride`` is None, else sliding windows.
        """
        p = self.preprocessing
        window = p.num_frames if window is None else window
        if stride is None:
            from ivnext.video import WindowPlan
            indices = uniform_clip_by_time(reader.timestamps,
                                           int(window) if window_unit == 'frames' else p.num_frames)
            ts = reader.timestamps
            return WindowPlan(frame_indices=indices[None], starts=np.array([ts[0]]),
                              ends=np.array([ts[0] + reader.duration]), sample_fps=0.0)
        return plan_windows(reader.timestamps, window=window, stride=stride, window_unit=window_unit,
                            stride_unit=stride_unit, fps=p.fps, frame_interval=p.frame_interval,
                            include_tail=include_tail)

    def iter_features(self, reader: VideoReader, plan, output: str = 'pooled', batch_size: int = 8,
                      precision: str = 'auto') -> Iterator[Tuple[int, torch.Tensor]]:
        """Encode the windows of ``plan`` ``batch_size`` at a time (memory does not grow with video length).

        Yields:
            tuple: (index of the chunk's first window, (b, ...) float32 CPU features).
        """
        self._check_output(output)
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        with torch.inference_mode(), self.autocast(precision):
            for first in range(0, len(plan), batch_size):
                indices = plan.frame_indices[first:first + batch_size]
                frames = reader.get_frames(indices.reshape(-1))
                frames = frames.reshape(*indices.shape, *frames.shape[1:])
                yield first, self(self.preprocess(frames), output).float().cpu()

    def encode(self, video: VideoInput, output: str = 'pooled', stride: Optional[float] = None,
               stride_unit: str = 'frames', window: Optional[float] = None, window_unit: str = 'frames',
               video_fps: Optional[float] = None, batch_size: int = 8, backend: str = 'auto',
               include_tail: bool = False, precision: str = 'auto') -> VideoFeatures:
        """Encode one video.

        Args:
            video: A file path; an array / tensor of frames (N, H, W, 3) RGB 0-255; or prepared clips
                (B, 3, T, H, W) float (see :meth:`preprocess`), encoded as they are.
            output: 'pooled' (attention-pooled clip embedding), 'avg' (mean patch token) or 'tokens'.
            stride: None: one clip of ``num_frames`` frames spread evenly over the whole video's time. Else
                sliding windows this far apart, in sampled frames or seconds (``stride_unit``; window ``k`` starts
                exactly ``k * stride`` seconds in), at the preprocessing's ``fps`` (or the average frame rate /
                ``frame_interval``); frames are chosen by their timestamps (see :mod:`ivnext.video.windows`).
            stride_unit: 'frames' or 'seconds'.
            window: Window length (default ``preprocessing.num_frames`` sampled frames).
            window_unit: 'frames' or 'seconds'.
            video_fps: Frame rate of an array video (its times are frame numbers without it).
            batch_size: Windows per forward pass.
            backend: Decoding backend for files ('auto', 'decord', 'pyav', 'torchcodec').
            include_tail: Add a last window ending at the video's end when the stride leaves frames over.
            precision: 'auto' (bf16 autocast on CUDA, fp32 on CPU), 'bf16', 'fp16' or 'fp32'.

        Returns:
            VideoFeatures: features (W, ...) and per-window times.
        """
        if isinstance(video, torch.Tensor) and video.dim() == 5 and video.shape[1] == 3 and video.is_floating_point():
            with torch.inference_mode(), self.autocast(precision):
                feats = torch.cat([self(video[i:i + batch_size].to(self.device), output).float().cpu()
                                   for i in range(0, len(video), batch_size)])
            return VideoFeatures(features=feats, time_unit='')
        if isinstance(video, (str, os.PathLike)):
            reader = open_video(str(video), backend)
            unit = 'seconds'
        else:
            reader = ArrayVideo(video, video_fps)
            unit = 'seconds' if video_fps else 'frames'
        try:
            plan = self.plan(reader, stride, stride_unit, window, window_unit, include_tail)
            chunks = [feats for _, feats in self.iter_features(reader, plan, output, batch_size, precision)]
        finally:
            reader.close()
        return VideoFeatures(features=torch.cat(chunks), starts=plan.starts, ends=plan.ends,
                             frame_indices=plan.frame_indices, time_unit=unit, source_fps=reader.fps,
                             num_source_frames=reader.num_frames, backend=reader.backend,
                             sample_fps=plan.sample_fps)

    # ------------------------------------------------------------ save/load
    def config_dict(self) -> Dict:
        """The ``config.json`` content: encoder arguments and preprocessing."""
        import ivnext
        # A transformers encoder is saved with its whole config, so the folder rebuilds it on its own.
        encoder = (self.backbone.export_config() if isinstance(self.backbone, TransformersBackbone)
                   else self.encoder_config)
        return dict(model_type=MODEL_TYPE, ivnext_version=ivnext.__version__, encoder=encoder,
                    preprocessing=asdict(self.preprocessing))

    def save_pretrained(self, folder: str) -> List[str]:
        """Write ``config.json`` and ``model.safetensors`` (the encoder's state dict) to ``folder``.

        Returns:
            list: The written paths.
        """
        from safetensors.torch import save_file
        os.makedirs(folder, exist_ok=True)
        state = {k: v.detach().to('cpu').contiguous().clone() for k, v in self.backbone.state_dict().items()}
        weights = osp.join(folder, WEIGHTS_NAME)
        save_file(state, weights, metadata=dict(format='pt', model_type=MODEL_TYPE))
        config = osp.join(folder, CONFIG_NAME)
        with open(config, 'w') as f:
            json.dump(self.config_dict(), f, indent=2)
        return [config, weights]

    @classmethod
    def from_pretrained(cls, folder: str, device: Union[str, torch.device] = 'cpu',
                        **preprocessing) -> 'VideoEncoder':
        """Read a folder written by :meth:`save_pretrained` (strict: every tensor must match).

        Args:
            folder: Folder with ``config.json`` and ``model.safetensors``.
            device: Where to put the model.
            **preprocessing: Overrides of :class:`Preprocessing` fields.
        """
        config = read_ivnext_config(folder)
        if config is None:
            raise FileNotFoundError(f'{folder} has no ivnext {CONFIG_NAME} (model_type {MODEL_TYPE!r}); use '
                                    'ivnext.load_encoder for released folders and checkpoints')
        from ivnext.utils.checkpoint import load_safetensors, load_weights

        from .folder_check import check_folder_weights
        check_folder_weights(folder, config, WEIGHTS_NAME, CONFIG_NAME)  # before anything is allocated
        saved = config.get('preprocessing') or {}
        if not isinstance(saved, dict):
            raise ValueError(f'{osp.join(folder, CONFIG_NAME)}: "preprocessing" must be an object of Preprocessing '
                             f'fields, got {type(saved).__name__}; save the encoder again')
        prep = dict(saved, **preprocessing)
        try:
            prep = Preprocessing(**prep)
        except (TypeError, ValueError) as err:
            raise ValueError(f'{osp.join(folder, CONFIG_NAME)}: bad "preprocessing" ({err})') from None
        try:
            model = cls(config['encoder'], prep)
            load_weights(model.backbone, load_safetensors(osp.join(folder, WEIGHTS_NAME)), 'strict', prefixes=(),
                         name=osp.join(folder, WEIGHTS_NAME), logger=API_LOGGER)
        except (TypeError, KeyError, ValueError, RuntimeError) as err:  # a field or a shape that does not fit
            raise ValueError(f'{osp.join(folder, CONFIG_NAME)} does not describe {osp.join(folder, WEIGHTS_NAME)} '
                             f'({type(err).__name__}: {" ".join(str(err).split())[:500]}); save the encoder '
                             'again') from None
        return model.to(device).eval()


def read_ivnext_config(folder: str) -> Optional[Dict]:
    """The ivnext ``config.json`` of ``folder``, or None when there is none (or it is another library's)."""
    config = read_config_json(folder, CONFIG_NAME, hint='; save the encoder again')
    return config if isinstance(config, dict) and config.get('model_type') == MODEL_TYPE else None


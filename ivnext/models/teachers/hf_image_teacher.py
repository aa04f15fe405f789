"""Frozen Hugging Face image model used as a per-frame semantic target generator."""
import os
from abc import abstractmethod
from typing import Dict, List, Optional, Sequence, Tuple, Type, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

# mmaction2's ActionDataPreprocessor statistics (0-255 pixel scale), see the contract.
MMACTION_MEAN = (123.675, 116.28, 103.53)
MMACTION_STD = (58.395, 57.12, 57.375)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_DTYPES = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}


def default_return_layers(num_layers: int, num_return_layers: int = 6, return_interval: float = 1.0) -> List[int]:
    """Layer indices whose *inputs* are returned, spaced from the last layer backwards.

    Index ``i`` means the hidden state entering layer ``i`` (Hugging Face's ``hidden_states[i]``). The released
    Stage-1 recipe uses 6 layers; with the SigLIP2-1B teacher (40 layers) it spaces them every 3.33 layers, which
    gives ``[23, 26, 30, 33, 36, 39]``. With ``return_interval=1`` these are the inputs of the last 6 layers.

    Args:
        num_layers: Depth of the teacher.
        num_return_layers: How many layers to return.
        return_interval: Spacing between returned layers, counted back from the last one.

    Returns:
        list[int]: Sorted ascending (shallow to deep).
    """
    idx = sorted({num_layers - int(i * return_interval) - 1 for i in range(num_return_layers)})
    if len(idx) != num_return_layers or idx[0] < 0:
        raise ValueError(f'num_return_layers={num_return_layers} with return_interval={return_interval} does not fit '
                         f'a {num_layers}-layer teacher; lower them or pass return_layers explicitly.')
    return idx


class HFImageTeacher(BaseModule):
    """Frozen image model from Hugging Face transformers run on every frame of a clip.

    Family subclasses say which transformers classes they wrap and how to read the pooled embedding and the token
    importance; this base does the loading, freezing, pre-processing, layer capture and output packing.

    The input clip is normalised with mmaction2's statistics. The teacher undoes that, resizes every frame to
    ``image_size`` (bicubic) so that its patch grid matches the student's, normalises with its own mean/std and
    runs all ``B*T`` frames as one batch under ``torch.no_grad()``.

    Hidden states are captured with forward pre-hooks on the encoder layers, so only the requested layers are kept
    and the model keeps its configured (SDPA) attention. The importance map needs one attention matrix; it is
    recomputed from the queries and keys of that single attention instead of switching the model to eager attention.

    Args:
        pretrained: Local directory holding a transformers checkpoint (loaded with ``local_files_only=True``).
        model_config: Keyword arguments of the transformers config class, for a randomly initialised model (tests).
            Exactly one of ``pretrained`` and ``model_config`` must be given.
        image_size: Side of the square image fed to the teacher. None: the family default (the Stage-1
            algorithm then sets it to the student's tokens per side x the teacher patch).
        return_layers: Indices of the layers whose inputs are returned (``hidden_states[i]`` in transformers terms,
            ``0 <= i < num_layers``, negative values count from the end). None: :func:`default_return_layers`.
        num_return_layers: Used when ``return_layers`` is None.
        return_interval: Used when ``return_layers`` is None.
        mean: Teacher normalisation mean on the 0-1 scale. None: the family default.
        std: Teacher normalisation std on the 0-1 scale. None: the family default.
        input_mean: Mean the student clip was normalised with (0-255 scale).
        input_std: Std the student clip was normalised with (0-255 scale).
        dtype: 'float32', 'bfloat16' or 'float16': dtype of the teacher's weights and compute (bf16 is meant for
            CUDA). Outputs are always float32.
        attn_implementation: transformers attention backend ('sdpa' or 'eager').
        init_cfg: Unused: the weights come from ``pretrained`` and :meth:`init_weights` leaves them alone.
    """

    #: transformers model class used for ``pretrained`` / ``model_config`` (set by subclasses).
    model_class: Type[nn.Module] = None
    #: transformers config class used for ``model_config``.
    config_class: Type = None
    default_image_size: Optional[int] = None
    default_mean: Tuple[float, float, float] = IMAGENET_MEAN
    default_std: Tuple[float, float, float] = IMAGENET_STD

    def __init__(self,
                 pretrained: Optional[str] = None,
                 model_config: Optional[dict] = None,
                 image_size: Optional[int] = None,
                 return_layers: Optional[Sequence[int]] = None,
                 num_return_layers: int = 6,
                 return_interval: float = 1.0,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 input_mean: Sequence[float] = MMACTION_MEAN,
                 input_std: Sequence[float] = MMACTION_STD,
                 dtype: str = 'float32',
                 attn_implementation: str = 'sdpa',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if dtype not in _DTYPES:
            raise ValueError(f'dtype must be one of {sorted(_DTYPES)}, got {dtype!r}.')
        self.model = self._load_model(pretrained, model_config, attn_implementation)
        self.model.to(_DTYPES[dtype])
        self.model.eval()
        self.model.requires_grad_(False)

        self.image_size = int(image_size or self._native_image_size())
        if self.image_size % self.patch_size:
            raise ValueError(f'image_size={self.image_size} must be a multiple of the teacher patch size '
                             f'{self.patch_size}.')
        n = self.num_layers
        if return_layers is None:
            layers = default_return_layers(n, num_return_layers, return_interval)
        else:
            layers = sorted({int(i) % n if -n <= int(i) < n else int(i) for i in return_layers})
            bad = [i for i in layers if not 0 <= i < n]
            if bad or not layers:
                raise ValueError(f'return_layers must be non-empty indices in [-{n}, {n}) of the teacher\'s layers, '
                                 f'got {list(return_layers)}.')
        self.return_layers: List[int] = layers

        mean = tuple(mean if mean is not None else self.default_mean)
        std = tuple(std if std is not None else self.default_std)
        # x_teacher = x_student * scale + shift  (per channel), folding un- and re-normalisation together.
        in_mean = torch.tensor(input_mean, dtype=torch.float32) / 255.
        in_std = torch.tensor(input_std, dtype=torch.float32) / 255.
        t_mean, t_std = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
        self.register_buffer('_scale', (in_std / t_std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('_shift', ((in_mean - t_mean) / t_std).view(1, 3, 1, 1), persistent=False)

    # ------------------------------------------------------------------ building
    def _load_model(self, pretrained: Optional[str], model_config: Optional[dict],
                    attn_implementation: str) -> nn.Module:
        if (pretrained is None) == (model_config is None):
            raise ValueError(f'{type(self).__name__}: give exactly one of pretrained (a local checkpoint directory) '
                             f'or model_config (a dict of {self.config_class.__name__} fields).')
        if pretrained is not None:
            if not os.path.isdir(pretrained):
                raise FileNotFoundError(f'{type(self).__name__}: pretrained={pretrained!r} is not a directory; '
                                        f'download the checkpoint there first (nothing is fetched at run time).')
            return self.model_class.from_pretrained(
                pretrained, local_files_only=True, attn_implementation=attn_implementation)
        config = self.config_class(**model_config)
        return self.model_class._from_config(config, attn_implementation=attn_implementation)

    def init_weights(self) -> None:
        """Keep the loaded weights (MMEngine would otherwise call the wrapped model's own initialiser)."""

    def train(self, mode: bool = True) -> 'HFImageTeacher':
        """The teacher is frozen: it stays in eval mode whatever ``mode`` says."""
        return super().train(False)

    # ------------------------------------------------------------------ family hooks
    @property
    def vision_config(self):
        """The transformers config of the vision tower."""
        return self.model.config

    def _native_image_size(self) -> int:
        return self.default_image_size or self.vision_config.image_size

    @abstractmethod
    def _encoder_layers(self) -> nn.ModuleList:
        """The model's transformer layers, in order (hooks capture their inputs)."""

    @property
    def num_cls_tokens(self) -> int:
        """Tokens before the patch tokens in the sequence (CLS, registers)."""
        return 0

    @abstractmethod
    def _run_model(self, pixels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Run the model on ``pixels`` (F, 3, S, S); return (last_hidden_state (F, L, C), pooled (F, Cp))."""

    @abstractmethod
    def _importance(self, last_layer_input: torch.Tensor, last_hidden_state: torch.Tensor) -> torch.Tensor:
        """Patch importance (F, h*w) before renormalisation, from the last layer's input / the model output."""

    # ------------------------------------------------------------------ properties
    @property
    def patch_size(self) -> int:
        """Teacher patch side in pixels."""
        return int(self.vision_config.patch_size)

    @property
    def num_layers(self) -> int:
        """Teacher depth."""
        return int(self.vision_config.num_hidden_layers)

    @property
    def num_heads(self) -> int:
        """Attention heads of the teacher."""
        return int(self.vision_config.num_attention_heads)

    @property
    def embed_dims(self) -> int:
        """Width Ct of the returned hidden states."""
        return int(self.vision_config.hidden_size)

    @property
    def pooled_dims(self) -> int:
        """Width Cp of the pooled embedding."""
        return self.embed_dims

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the teacher's weights."""
        return next(self.model.parameters()).dtype

    def grid_size(self, height: Optional[int] = None, width: Optional[int] = None) -> Tuple[int, int]:
        """Teacher patch grid (h, w) of one frame; the teacher always resizes to ``image_size``.

        Args:
            height: Ignored (frames are resized to ``image_size``); kept for call symmetry with the student.
            width: Ignored.

        Returns:
            tuple: (image_size // patch_size, image_size // patch_size).
        """
        side = self.image_size // self.patch_size
        return side, side

    def set_image_size(self, image_size: int) -> None:
        """Resize frames to ``image_size`` from now on (the Stage-1 algorithm sets it from the student's grid).

        Raises:
            ValueError: ``image_size`` is not a positive multiple of the teacher patch size.
        """
        image_size = int(image_size)
        if image_size <= 0 or image_size % self.patch_size:
            raise ValueError(f'image_size={image_size} must be a positive multiple of the teacher patch size '
                             f'{self.patch_size}.')
        self.image_size = image_size

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _single_query_attention(query: torch.Tensor, keys: torch.Tensor, num_heads: int) -> torch.Tensor:
        """Softmax attention weights of one query per frame, averaged over heads.

        Args:
            query: (F, C) projected query (bias included).
            keys: (F, L, C) projected keys.
            num_heads: Heads to split C into.

        Returns:
            Tensor: (F, L) float32, each row sums to 1.
        """
        f, length, c = keys.shape
        hd = c // num_heads
        q = query.float().view(f, num_heads, 1, hd)
        k = keys.float().view(f, length, num_heads, hd).transpose(1, 2)
        logits = (q @ k.transpose(-1, -2)).squeeze(2) * hd**-0.5  # (F, heads, L)
        return logits.softmax(-1).mean(1)

    def preprocess(self, clip: torch.Tensor) -> torch.Tensor:
        """Student clip -> teacher frames.

        Args:
            clip: (B, 3, T, H, W) normalised with ``input_mean`` / ``input_std``.

        Returns:
            Tensor: (B*T, 3, S, S) frames in (b, t) order, resized to ``image_size`` and normalised for the teacher.
        """
        if clip.dim() != 5 or clip.shape[1] != 3:
            raise ValueError(f'{type(self).__name__} expects a clip (B, 3, T, H, W), got shape {tuple(clip.shape)}.')
        b, c, t, h, w = clip.shape
        frames = clip.transpose(1, 2).reshape(b * t, c, h, w).float()
        frames = frames * self._scale + self._shift
        if (h, w) != (self.image_size, self.image_size):
            frames = F.interpolate(frames, size=(self.image_size, self.image_size), mode='bicubic',
                                   align_corners=False)
        return frames.to(self.dtype)

    # ------------------------------------------------------------------ forward
    @torch.no_grad()
    def forward(self, clip: torch.Tensor) -> Dict[str, Union[torch.Tensor, List[torch.Tensor], tuple]]:
        """Compute the semantic targets of a clip.

        Args:
            clip: (B, 3, T, H, W) normalised with mmaction2's ImageNet statistics.

        Returns:
            dict:
                - ``hidden_states``: list (one per ``return_layers``, shallow to deep) of (B, T*h*w, Ct) patch tokens
                  entering that layer, L2-normalised over channels, prefix (CLS/register) tokens dropped,
                  (t, h, w) raster order.
                - ``pooled_frames``: (B, T, Cp) L2-normalised pooled embedding of every frame.
                - ``pooled``: (B, Cp) mean of ``pooled_frames`` over frames (not renormalised, as released).
                - ``importance``: (B, T, h*w) patch importance, each frame sums to 1.
                - ``grid``: (T, h, w) token grid of the targets.
        """
        b, _, t = clip.shape[:3]
        frames = self.preprocess(clip)
        layers = self._encoder_layers()
        wanted = set(self.return_layers) | {self.num_layers - 1}
        captured: Dict[int, torch.Tensor] = {}

        def make_hook(index: int):
            def hook(module, args, kwargs):
                captured[index] = args[0] if args else kwargs['hidden_states']
            return hook

        handles = [layers[i].register_forward_pre_hook(make_hook(i), with_kwargs=True) for i in sorted(wanted)]
        try:
            last_hidden, pooled = self._run_model(frames)
        finally:
            for handle in handles:
                handle.remove()

        gh, gw = self.grid_size()
        p0 = self.num_cls_tokens
        hidden = []
        for i in self.return_layers:
            tokens = captured[i][:, p0:].float()
            tokens = F.normalize(tokens, dim=-1)
            hidden.append(tokens.reshape(b, t * gh * gw, tokens.shape[-1]))

        pooled_frames = F.normalize(pooled.float(), dim=-1).view(b, t, -1)
        importance = self._importance(captured[self.num_layers - 1], last_hidden).float()
        importance = importance / importance.sum(-1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
        return dict(
            hidden_states=hidden,
            pooled_frames=pooled_frames,
            pooled=pooled_frames.mean(1),
            importance=importance.view(b, t, gh * gw),
            grid=(t, gh, gw),
        )

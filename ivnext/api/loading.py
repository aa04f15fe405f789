"""``load_encoder``: an encoder from a preset, a folder, a checkpoint file or a Hugging Face Hub id.

Sources, tried in this order:

1. a preset name (:data:`PRESETS`: the released Base / Large encoders; their weights come from the Hub cache);
2. an existing folder: an ivnext ``save_pretrained`` folder (``config.json`` + ``model.safetensors``), a
   transformers model folder of another encoder (V-JEPA 2, VideoMAE, TimeSformer, ViViT, VideoPrism, DINOv2,
   SigLIP / SigLIP2, CLIP; ``config.json`` with its ``model_type``, read by
   :class:`~ivnext.models.backbones.TransformersBackbone`), or the authors' released folder
   (``model.safetensors`` / ``pytorch_model.bin``, encoder keys);
3. an existing file: ``.safetensors`` / ``.bin`` / ``.pt`` / ``.pth`` holding an encoder under any prefix
   (released weights, ``tools/convert/export_backbone.py`` output, a recognizer, a Stage-1 / Stage-2 run);
4. a Hub id ``owner/name``, resolved from the local Hugging Face cache (see :mod:`ivnext.api.hub`).

The encoder's shape is read from the weights (width, depth, MLP ratio, patch, frames, projector); the head count,
which the weights do not fix, comes from the width of the paper's sizes or from ``num_heads``.
"""
import math
import os.path as osp
import re
from typing import Dict, Optional, Tuple, Union

import torch

from ivnext.models.backbones.internvideo_next_vit import ARCH_SETTINGS
from ivnext.models.backbones.transformers_backbone import is_transformers_folder
from ivnext.utils.checkpoint import UntrustedCheckpointError, current_opt_in, load_weights, read_state_dict

from .encoder import API_LOGGER, Preprocessing, VideoEncoder, read_ivnext_config
from .hub import looks_like_hub_id, resolve_hub_id

# Preset name -> released weights on the Hub and the paper's encoder size.
PRESETS: Dict[str, Dict] = {
    'internvideo-next-base': dict(repo_id='revliter/internvideo_next_base_p14_res224_f16', arch='base'),
    'internvideo-next-large': dict(repo_id='revliter/internvideo_next_large_p14_res224_f16', arch='large'),
}
PRESET_ALIASES = {'base': 'internvideo-next-base', 'large': 'internvideo-next-large',
                  'internvideo_next_base_p14_res224_f16': 'internvideo-next-base',
                  'internvideo_next_large_p14_res224_f16': 'internvideo-next-large'}
ANCHOR = 'patch_embed.proj.weight'
HEADS_BY_WIDTH = {s['embed_dims']: s['num_heads'] for s in ARCH_SETTINGS.values()}
# Encoder prefixes preferred when a checkpoint holds several encoders (Stage 2: student and frozen teacher).
PREFERRED_PREFIXES = ('', 'backbone.', 'module.backbone.', 'student.', 'encoder.')


def preset_config(name: str, num_frames: int = 16, img_size: int = 224) -> Dict:
    """Encoder arguments of a preset (paper sizes, projector to 768 as released)."""
    arch = dict(ARCH_SETTINGS[PRESETS[name]['arch']])
    return dict(arch=arch, img_size=img_size, patch_size=14, num_frames=num_frames, tubelet_size=1, in_channels=3,
                num_cls_tokens=4, with_clip_projector=True, clip_embed_dims=768, clip_num_heads=16)


def find_encoder_prefix(state: Dict[str, torch.Tensor], source: str) -> str:
    """The key prefix under which ``state`` stores an encoder (the text before ``patch_embed.proj.weight``)."""
    candidates = sorted(k[:-len(ANCHOR)] for k in state if k.endswith(ANCHOR))
    if not candidates:
        raise KeyError(f'{source} holds no InternVideo-Next encoder (no key ends with {ANCHOR!r}); '
                       f'first keys: {list(state)[:5]}')
    if len(candidates) == 1:
        return candidates[0]
    for prefix in PREFERRED_PREFIXES:
        if prefix in candidates:
            return prefix
    raise KeyError(f'{source} holds several encoders (prefixes {candidates}); pass prefix=...')


def infer_encoder_config(enc: Dict[str, torch.Tensor], num_heads: Optional[int] = None,
                         img_size: Optional[int] = None, num_frames: Optional[int] = None,
                         clip_num_heads: Optional[int] = None) -> Dict:
    """Encoder arguments from bare encoder weights (keys without prefix).

    Raises:
        ValueError: The head count or the clip grid cannot be inferred; the message names the argument to pass.
    """
    proj = enc[ANCHOR]  # (C, in_channels, tubelet, p, p)
    width, in_channels, tubelet, patch = proj.shape[0], proj.shape[1], proj.shape[2], proj.shape[3]
    depth = 1 + max(int(m.group(1)) for k in enc for m in [re.match(r'blocks\.(\d+)\.', k)] if m)
    hidden = enc['blocks.0.mlp.fc1.weight'].shape[0]
    heads = num_heads or HEADS_BY_WIDTH.get(width)
    if heads is None:
        raise ValueError(f'cannot infer the head count of a width-{width} encoder; pass num_heads=...')
    num_cls = enc['cls_token'].shape[1]
    rows = enc['pos_embed'].shape[1] - num_cls if 'pos_embed' in enc else None
    if img_size is None:
        img_size = 224
        if rows is not None and rows % (224 // patch)**2:
            # Not a 224 px table: the largest square grid with at most 64 time steps.
            sides = [s for s in range(int(math.isqrt(rows)), 0, -1) if rows % (s * s) == 0 and rows // (s * s) <= 64]
            if not sides:
                raise ValueError(f'cannot infer the clip grid of a {rows}-row position table; pass img_size=...')
            img_size = sides[0] * patch
    if num_frames is None:
        side = img_size // patch
        if rows is not None and rows % (side * side):
            raise ValueError(f'a {rows}-row position table does not fit {side}x{side} patches ({img_size} px); '
                             'pass the img_size the weights were trained at')
        num_frames = (rows // (side * side) if rows is not None else 16) * tubelet
    clip = enc.get('clip_projector.cross_attn.proj.weight')
    clip_dims = None if clip is None else clip.shape[0]
    if clip_num_heads is None:
        clip_num_heads = 16 if clip_dims is None or clip_dims % 16 == 0 else math.gcd(clip_dims, 16)
    return dict(arch=dict(embed_dims=width, num_layers=depth, num_heads=heads, mlp_ratio=hidden / width),
                img_size=img_size, patch_size=patch, num_frames=num_frames, tubelet_size=tubelet,
                in_channels=in_channels, num_cls_tokens=num_cls, with_clip_projector=clip is not None,
                clip_embed_dims=clip_dims or 768, clip_num_heads=clip_num_heads)


def resolve_source(source: str, cache_dir: Optional[str] = None, revision: Optional[str] = None,
                   allow_download: bool = False) -> Tuple[str, Optional[str]]:
    """(local path, preset name or None) of ``source`` (see the module docstring for the order)."""
    name = PRESET_ALIASES.get(source, source)
    if name in PRESETS:
        return resolve_hub_id(PRESETS[name]['repo_id'], revision, cache_dir, allow_download), name
    if osp.exists(source):
        return source, None
    if looks_like_hub_id(source):
        return resolve_hub_id(source, revision, cache_dir, allow_download), None
    raise FileNotFoundError(f'{source!r} is not a preset ({sorted(PRESETS)}), an existing folder or file, or a '
                            'Hugging Face id (owner/name)')


def load_transformers_encoder(folder: str, device: Union[str, torch.device] = 'cpu', **preprocessing) -> VideoEncoder:
    """A transformers model folder (V-JEPA 2, VideoMAE, DINOv2, SigLIP, ...) as a :class:`VideoEncoder`.

    The preprocessing defaults to the model's frames per clip, input side (resize = crop) and normalisation
    (see :class:`~ivnext.models.backbones.TransformersBackbone`); keyword arguments override them.
    """
    model = VideoEncoder(dict(type='TransformersBackbone', pretrained=folder))
    backbone = model.backbone
    preprocessing.setdefault('num_frames', backbone.default_num_frames)
    preprocessing.setdefault('crop', backbone.default_img_size)
    preprocessing.setdefault('resize', preprocessing['crop'])
    preprocessing.setdefault('mean', backbone.mean)
    preprocessing.setdefault('std', backbone.std)
    model.preprocessing = Preprocessing(**preprocessing)
    return model.to(device).eval()


def load_encoder(source: str, *, pretrained: bool = True, device: Union[str, torch.device] = 'cpu',
                 trust_checkpoint: bool = False, cache_dir: Optional[str] = None, revision: Optional[str] = None,
                 allow_download: bool = False, prefix: Optional[str] = None, num_heads: Optional[int] = None,
                 img_size: Optional[int] = None, num_frames: Optional[int] = None,
                 clip_num_heads: Optional[int] = None, **preprocessing) -> VideoEncoder:
    """Build an InternVideo-Next encoder with its preprocessing and load its weights.

    Args:
        source: Preset name ('internvideo-next-base' / 'base', 'internvideo-next-large' / 'large'), a folder, a
            weights / checkpoint file, or a Hugging Face id.
        pretrained: With a preset name, False builds the preset with random weights (nothing is read).
        device: Where to put the model.
        trust_checkpoint: Allow checkpoint files that pickle Python objects (MMEngine training runs); only for
            files you trust. Weights-only reading otherwise.
        cache_dir: Hugging Face cache folder for Hub ids and presets (default: huggingface_hub's).
        revision: Hub revision.
        allow_download: Download a Hub id missing from the cache (off: nothing is fetched from the network).
        prefix: Encoder key prefix in a checkpoint holding several encoders.
        num_heads: Attention heads, for widths other than the paper's sizes.
        img_size: Build resolution, when the position table does not say it (non-224 px weights).
        num_frames: Build frames (default: the weights' position table; the preprocessing follows it).
        clip_num_heads: Projector heads (default 16 as released).
        **preprocessing: :class:`Preprocessing` fields (num_frames, frame_interval, fps, resize, crop, mean, std).

    Returns:
        VideoEncoder: in eval mode on ``device``.
    """
    source = str(source)
    name = PRESET_ALIASES.get(source, source)
    if name in PRESETS and not pretrained:
        config = preset_config(name, num_frames or 16, img_size or 224)
        preprocessing.setdefault('num_frames', config['num_frames'])
        return VideoEncoder(config, Preprocessing(**preprocessing)).to(device).eval()
    path, _ = resolve_source(source, cache_dir, revision, allow_download)
    if osp.isdir(path) and read_ivnext_config(path) is not None:
        return VideoEncoder.from_pretrained(path, device, **preprocessing)
    if is_transformers_folder(path):
        return load_transformers_encoder(path, device, **preprocessing)
    try:
        # The refusal keeps torch's reason and names the opt-in where the user is (keyword, or a command's flag).
        state = read_state_dict(path, trust_checkpoint, current_opt_in('`trust_checkpoint=True`'))
    except UntrustedCheckpointError as err:
        raise UntrustedCheckpointError(f'{err} An MMEngine training checkpoint can also be exported to bare '
                                       'weights first with tools/convert/export_backbone.py.') from None
    prefix = find_encoder_prefix(state, path) if prefix is None else prefix
    enc = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    # The crop the caller asks for is the build resolution unless img_size says otherwise.
    try:
        config = infer_encoder_config(enc, num_heads, img_size or preprocessing.get('crop'), None, clip_num_heads)
    except (ValueError, KeyError, IndexError) as err:
        raise ValueError(f'{path}: {err.args[0] if err.args else err}') from None
    if num_frames is not None:
        config['num_frames'] = num_frames  # the position table is interpolated in time
    preprocessing.setdefault('num_frames', config['num_frames'])
    preprocessing.setdefault('crop', config['img_size'])
    preprocessing.setdefault('resize', max(preprocessing['crop'], config['img_size']))
    model = VideoEncoder(config, Preprocessing(**preprocessing))
    # Every encoder tensor must be present; a missing projector is allowed only when the model was built without one.
    load_weights(model.backbone, enc, 'complete', prefixes=(), name=path, logger=API_LOGGER)
    return model.to(device).eval()

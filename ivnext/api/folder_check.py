"""A ``save_pretrained`` folder's ``config.json`` checked against its weights before any model is built.

``config.json`` decides how large a model :meth:`VideoEncoder.from_pretrained` builds; a wrong or crafted one
(``embed_dims=8192, num_layers=64`` next to tiny weights) would allocate gigabytes before the weights are read.
Here every size that decides the model's memory (width, depth, MLP width, token grid, projector) is compared with
the tensor shapes of the ``model.safetensors`` header (read without loading a tensor), so only a model as large as
its weights is ever built; the strict load that follows compares every remaining shape.
"""
import math
import os.path as osp
import re
from typing import Any, Dict, Tuple

from ivnext.utils.checkpoint import read_safetensors_header

Shapes = Dict[str, Tuple[int, ...]]


class FolderMismatchError(ValueError):
    """A folder's ``config.json`` does not describe its weights."""


def _positive_int(value: Any, field: str, config_path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise FolderMismatchError(f'{config_path}: encoder.{field} must be a positive integer, got {value!r}')
    return value


def _arch(encoder: Dict, config_path: str) -> Dict:
    from ivnext.models.backbones.internvideo_next_vit import ARCH_SETTINGS
    arch = encoder.get('arch', 'base')
    if isinstance(arch, str):
        if arch not in ARCH_SETTINGS:
            raise FolderMismatchError(f'{config_path}: encoder.arch {arch!r} is not one of {sorted(ARCH_SETTINGS)}')
        arch = ARCH_SETTINGS[arch]
    if not isinstance(arch, dict):
        raise FolderMismatchError(f'{config_path}: encoder.arch must be a name or an object, got {arch!r}')
    return arch


def check_sizes(encoder: Dict, shapes: Shapes, config_path: str, weights_path: str) -> None:
    """Compare the sizes that decide the model's memory (width, depth, MLP width, token grid) with the weights.

    Raises:
        FolderMismatchError: Naming the field, its value in ``config.json`` and what the weights hold.
    """
    def mismatch(field: str, value: Any, found: Any) -> FolderMismatchError:
        return FolderMismatchError(f'{config_path} says encoder.{field}={value!r} but {weights_path} holds '
                                   f'{found}; the folder was edited or mixed up: save the encoder again')

    arch = _arch(encoder, config_path)
    width = _positive_int(arch.get('embed_dims'), 'arch.embed_dims', config_path)
    depth = _positive_int(arch.get('num_layers'), 'arch.num_layers', config_path)
    _positive_int(arch.get('num_heads'), 'arch.num_heads', config_path)
    proj = shapes.get('patch_embed.proj.weight')
    if proj is None or len(proj) != 5:
        raise FolderMismatchError(f'{weights_path} holds no InternVideo-Next patch embedding '
                                  f"('patch_embed.proj.weight' of 5 dimensions)")
    if width != proj[0]:
        raise mismatch('arch.embed_dims', width, f'width {proj[0]}')
    blocks = {int(m.group(1)) for k in shapes for m in [re.match(r'blocks\.(\d+)\.', k)] if m}
    if depth != len(blocks):
        raise mismatch('arch.num_layers', depth, f'{len(blocks)} blocks')
    fc1 = shapes.get('blocks.0.mlp.fc1.weight')
    mlp_ratio = arch.get('mlp_ratio', 4.0)
    if not isinstance(mlp_ratio, (int, float)) or isinstance(mlp_ratio, bool) or not math.isfinite(mlp_ratio):
        raise FolderMismatchError(f'{config_path}: encoder.arch.mlp_ratio must be a number, got {mlp_ratio!r}')
    if fc1 is not None and int(width * mlp_ratio) != fc1[0]:
        raise mismatch('arch.mlp_ratio', mlp_ratio, f'an MLP of width {fc1[0]}')
    patch = _positive_int(encoder.get('patch_size', 14), 'patch_size', config_path)
    tubelet = _positive_int(encoder.get('tubelet_size', 1), 'tubelet_size', config_path)
    channels = _positive_int(encoder.get('in_channels', 3), 'in_channels', config_path)
    if (channels, tubelet, patch, patch) != tuple(proj[1:]):
        raise mismatch('in_channels / tubelet_size / patch_size', (channels, tubelet, patch), f'patch kernel {proj}')
    img = _positive_int(encoder.get('img_size', 224), 'img_size', config_path)
    frames = _positive_int(encoder.get('num_frames', 16), 'num_frames', config_path)
    num_cls = _positive_int(encoder.get('num_cls_tokens', 4), 'num_cls_tokens', config_path)
    pos = shapes.get('pos_embed')
    rows = (frames // tubelet) * (img // patch)**2 + num_cls
    if pos is not None and tuple(pos) != (1, rows, width):
        raise mismatch('num_frames / img_size / num_cls_tokens', (frames, img, num_cls),
                       f'a position table of shape {tuple(pos)}')
    clip = shapes.get('clip_projector.cross_attn.proj.weight')
    with_projector = encoder.get('with_clip_projector', True)
    if bool(with_projector) != (clip is not None):
        raise mismatch('with_clip_projector', with_projector, 'a clip projector' if clip is not None else
                       'no clip projector')
    if clip is not None:
        dims = _positive_int(encoder.get('clip_embed_dims', 768), 'clip_embed_dims', config_path)
        if dims != clip[0]:
            raise mismatch('clip_embed_dims', dims, f'a projector of width {clip[0]}')


def check_folder_weights(folder: str, config: Dict, weights_name: str, config_name: str) -> None:
    """Refuse a folder whose ``config.json`` sizes do not fit its ``.safetensors`` weights, before building anything.

    Args:
        folder: The ``save_pretrained`` folder.
        config: Its parsed ``config.json``.
        weights_name: The weights file name in ``folder``.
        config_name: The config file name in ``folder`` (for messages).

    Raises:
        FileNotFoundError: The weights file is missing.
        CorruptCheckpointError: The weights file's header is damaged.
        FolderMismatchError: The config does not describe the weights; names both files and the field.
    """
    config_path, weights_path = osp.join(folder, config_name), osp.join(folder, weights_name)
    encoder = config.get('encoder')
    if not isinstance(encoder, dict):
        raise FolderMismatchError(f'{config_path}: "encoder" must be an object of encoder arguments, got {encoder!r}')
    if not osp.isfile(weights_path):
        raise FileNotFoundError(f'{folder} has {config_name} but no {weights_name}')
    shapes = {name: shape for name, (_, shape) in read_safetensors_header(weights_path).items()}
    if encoder.get('type', 'InternVideoNextViT') != 'InternVideoNextViT':
        return  # another library's encoder: built by that library from its own config
    check_sizes(encoder, shapes, config_path, weights_path)

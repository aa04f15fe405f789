"""Parameter names and layouts between ivnext's pretraining models and the authors' training modules.

The authors' Stage-1 model (``InternVideo-Next/models/InternVideo_next_s1.py``, class ``InternVideo2``) holds
the encoder, the predictor (``bert_mask_token``, ``diff_pos_embed``, ``to_bert_proj``, ``bert_decoder.layers``),
the diffusion decoder (``diffloss.net``) and the alignment decoders (``clip_pos_embed``, ``clip_decoder``,
``final_clip_decoder``) in one module; ivnext splits them into ``backbone``, ``neck``, ``head``, ``align_head``
and ``pooled_align_head``. :func:`stage1_to_release` and :func:`stage1_from_release` map one state dict to the
other; names and values agree one to one except for:

* the diffusion decoder's pixel layout: ivnext's target patch vector is ``(t, p_h, p_w, c)`` (the layout of the
  encoder's pre-norm, :func:`ivnext.models.utils.patchify`), the release's ``(c, t, p_h, p_w)``
  (``F.pixel_unshuffle``). The decoder is a per-token MLP, so the two are the same function once the input
  projection's columns and the output rows (noise and variance halves) are permuted: :func:`pixel_permutation`;
* ``clip_pos_embed``: the release's table has CLS rows, which it adds to the CLS tokens and then drops before
  the decoders; ivnext's has patch rows only.

:func:`fill_deterministic` gives every parameter reproducible values from its name alone (no random generator),
so that the golden fixtures written from the release's code can be checked against ivnext without storing weights.
"""
import math
import re
import zlib
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

# ivnext prefix -> release prefix; tried in order, the first match wins.
_STAGE1_PREFIXES: List[Tuple[str, str]] = [
    ('backbone.', ''),
    ('neck.mask_token', 'bert_mask_token'),
    ('neck.pos_embed', 'diff_pos_embed'),
    ('neck.projector.fc1.', 'to_bert_proj.head.0.'),
    ('neck.projector.fc2.', 'to_bert_proj.head.2.'),
    ('neck.projector.norm.', 'to_bert_proj.norm.'),
    ('neck.layers.', 'bert_decoder.layers.'),
    ('head.net.time_embed.linear_1.', 'diffloss.net.time_embed.mlp.0.'),
    ('head.net.time_embed.linear_2.', 'diffloss.net.time_embed.mlp.2.'),
    ('head.net.final_modulation.', 'diffloss.net.final_layer.adaLN_modulation.'),
    ('head.net.output.', 'diffloss.net.final_layer.linear.'),
    ('head.net.', 'diffloss.net.'),
    ('align_head.clip_pos_embed', 'clip_pos_embed'),
    ('align_head.decoders.', 'clip_decoder.'),
    ('pooled_align_head.decoder.', 'final_clip_decoder.'),
]
_MLP_DECODER = [('.fc1.', '.head.0.'), ('.fc2.', '.head.2.')]
_DIFFUSION_BLOCK = [(r'\.blocks\.(\d+)\.norm\.', r'.res_blocks.\1.in_ln.'),
                    (r'\.blocks\.(\d+)\.modulation\.', r'.res_blocks.\1.adaLN_modulation.'),
                    (r'\.blocks\.(\d+)\.mlp\.', r'.res_blocks.\1.mlp.')]


def stage1_release_name(name: str) -> Optional[str]:
    """The release's name of an ivnext Stage-1 parameter (None for one it does not have, e.g. the teacher)."""
    for ours, theirs in _STAGE1_PREFIXES:
        if name.startswith(ours):
            out = theirs + name[len(ours):]
            break
    else:
        return None
    if out.startswith('clip_decoder.') or out.startswith('final_clip_decoder.'):
        for a, b in _MLP_DECODER:
            out = out.replace(a, b)
    if out.startswith('diffloss.net.'):
        for pattern, repl in _DIFFUSION_BLOCK:
            out = re.sub(pattern, repl, out)
    return out


def pixel_permutation(patch_size: int, tubelet_size: int = 1, channels: int = 3) -> torch.Tensor:
    """Index ``perm`` with ``ours = theirs[..., perm]`` for one patch vector.

    ivnext orders a patch ``(t, p_h, p_w, c)``; the release ``(c, t, p_h, p_w)``.

    Returns:
        Tensor: (u*p*p*c,) long.
    """
    u, p, c = tubelet_size, patch_size, channels
    theirs = torch.arange(c * u * p * p).view(c, u, p, p)
    return theirs.permute(1, 2, 3, 0).reshape(-1)


def _pixel_columns(tensor: torch.Tensor, perm: torch.Tensor, to_release: bool) -> torch.Tensor:
    out = torch.empty_like(tensor)
    if to_release:
        out[:, perm] = tensor
    else:
        out = tensor[:, perm].clone()
    return out


def _pixel_rows(tensor: torch.Tensor, perm: torch.Tensor, to_release: bool) -> torch.Tensor:
    d = perm.numel()
    halves = tensor.split(d, dim=0)  # noise half, variance half
    out = []
    for half in halves:
        if to_release:
            moved = torch.empty_like(half)
            moved[perm] = half
        else:
            moved = half[perm].clone()
        out.append(moved)
    return torch.cat(out, dim=0)


def _layout(name: str) -> Optional[str]:
    if name == 'head.net.input_proj.weight':
        return 'columns'
    if name in ('head.net.output.weight', 'head.net.output.bias'):
        return 'rows'
    return None


def stage1_to_release(state: Dict[str, torch.Tensor], patch_size: int = 14, tubelet_size: int = 1,
                      num_cls_tokens: int = 4) -> Dict[str, torch.Tensor]:
    """Rename (and re-lay) an ivnext Stage-1 state dict for the release's ``InternVideo2`` (Stage 1).

    Args:
        state: ivnext state dict (``backbone.*``, ``neck.*``, ``head.*``, ``align_head.*``,
            ``pooled_align_head.*``); other keys (a teacher) are left out.
        patch_size: Encoder patch side (pixel layout of the diffusion decoder).
        tubelet_size: Encoder tubelet length.
        num_cls_tokens: CLS rows the release's ``clip_pos_embed`` has in front (filled with zeros here).

    Returns:
        dict: Release-named tensors (the release's unused ModernBERT embeddings and final norm are absent).
    """
    perm = pixel_permutation(patch_size, tubelet_size)
    out = {}
    for name, value in state.items():
        theirs = stage1_release_name(name)
        if theirs is None:
            continue
        layout = _layout(name)
        if layout == 'columns':
            value = _pixel_columns(value, perm, to_release=True)
        elif layout == 'rows':
            value = _pixel_rows(value, perm, to_release=True)
        elif name == 'align_head.clip_pos_embed':
            value = torch.cat([value.new_zeros(1, num_cls_tokens, value.shape[-1]), value], dim=1)
        out[theirs] = value
    return out


def stage1_from_release(release_state: Dict[str, torch.Tensor], names: List[str], patch_size: int = 14,
                        tubelet_size: int = 1, num_cls_tokens: int = 4) -> Dict[str, torch.Tensor]:
    """The inverse of :func:`stage1_to_release` for the ivnext parameter ``names`` (e.g. a model's keys).

    Args:
        release_state: Release-named tensors (a Stage-1 checkpoint of the authors' code).
        names: ivnext names wanted; those without a release counterpart are skipped.
        patch_size: Encoder patch side.
        tubelet_size: Encoder tubelet length.
        num_cls_tokens: CLS rows of the release's ``clip_pos_embed`` (dropped).

    Returns:
        dict: ivnext-named tensors.
    """
    perm = pixel_permutation(patch_size, tubelet_size)
    out = {}
    for name in names:
        theirs = stage1_release_name(name)
        if theirs is None or theirs not in release_state:
            continue
        value = release_state[theirs]
        layout = _layout(name)
        if layout == 'columns':
            value = _pixel_columns(value, perm, to_release=False)
        elif layout == 'rows':
            value = _pixel_rows(value, perm, to_release=False)
        elif name == 'align_head.clip_pos_embed':
            value = value[:, num_cls_tokens:]
        out[name] = value
    return out


def _name_phase(name: str) -> float:
    return (zlib.crc32(name.encode()) % 100003) / 100003.0


def deterministic_values(name: str, shape: Tuple[int, ...]) -> torch.Tensor:
    """Reproducible values for a parameter of this name and shape, without a random generator.

    Norm weights get ``1 + 0.1 s``, other 1-D tensors and position / CLS / mask tables ``0.1 s``, matrices and
    convolution kernels ``s / sqrt(fan_in)``, with ``s`` a sine sequence in [-1, 1] whose frequency and phase
    come from the name (CRC-32), so that every tensor differs and nothing is zero (every gradient flows).

    Args:
        name: Parameter name (ivnext's).
        shape: Tensor shape.

    Returns:
        Tensor: fp32 values of ``shape``.
    """
    phase = _name_phase(name)
    n = math.prod(shape)
    index = torch.arange(n, dtype=torch.float64)
    s = torch.sin(index * (0.7 + 1.3 * phase) + 6.283 * phase).float().view(shape)
    leaf = name.rsplit('.', 1)[-1]
    if len(shape) == 1 and leaf == 'weight' and re.search(r'norm|\bln\b', name):
        return 1 + 0.1 * s
    if len(shape) >= 2 and leaf == 'weight':
        return s / math.sqrt(math.prod(shape[1:]))
    return 0.1 * s


def fill_deterministic(module: nn.Module, skip: Callable[[str], bool] = lambda name: False) -> None:
    """Overwrite every parameter of ``module`` with :func:`deterministic_values` (in place, no grad)."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            if not skip(name):
                param.copy_(deterministic_values(name, tuple(param.shape)).to(param.dtype))


def siglip_tower_to_release(tower_state: Dict[str, torch.Tensor], patch_size: int,
                            channels: int = 3) -> Dict[str, torch.Tensor]:
    """transformers' SigLIP2 vision tower state -> the release's ``SigLipVisionModel`` (``models/siglip_teacher.py``).

    Names agree once prefixed with ``vision_model.`` (transformers 4.x has the prefix inside the model, 5.x not:
    pass the tower's own ``state_dict()``, :attr:`ivnext.models.teachers.SigLIP2Teacher._tower`). SigLIP2's patch
    embedding is a Linear over ``(p_h, p_w, c)`` patch vectors; the release's is a Conv2d ``(C, c, p_h, p_w)``.

    Args:
        tower_state: The SigLIP2 tower's parameters (names without ``vision_model.``).
        patch_size: Teacher patch side p.
        channels: Image channels.

    Returns:
        dict: Release names -> tensors.
    """
    out = {}
    for name, value in tower_state.items():
        if name == 'embeddings.patch_embedding.weight' and value.dim() == 2:
            value = value.reshape(value.shape[0], patch_size, patch_size, channels).permute(0, 3, 1, 2).contiguous()
        out[f'vision_model.{name}'] = value
    return out

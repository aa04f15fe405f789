"""The InternVideo-Next encoder of any checkpoint as an mmaction2-loadable backbone checkpoint.

Stage-1 / Stage-2 pretraining checkpoints, fine-tuned recognizers and the authors' released weights all hold
the encoder somewhere under a prefix (``backbone.``, ``student.encoder.``, ``module.`` or none).
:func:`export_backbone` finds it (or takes ``prefix``), checks its key names against :class:`InternVideoNextViT`
built with the same shape, and writes ``{'state_dict': {'backbone.<name>': tensor}, 'meta': {...}}`` (plain
values only, so it loads weights-only), which mmaction2's ``load_from``, ``init_cfg=dict(type='Pretrained',
checkpoint=..., prefix='backbone.')`` and ivnext's ``backbone.pretrained`` all read; or, for a ``.safetensors``
output, the same tensors with ``meta`` as JSON metadata.

The input is read weights-only (ivnext's own training checkpoints included); ``trusted=True``
(``--trust-checkpoint``) unpickles it in full, for a file you trust that holds other Python objects.
"""
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

import ivnext
from ivnext.models.backbones import InternVideoNextViT
from ivnext.utils.checkpoint import read_state_dict, save_state_dict

# A key every encoder has; the text before it is the encoder's prefix.
ANCHOR = 'patch_embed.proj.weight'


def load_any_state_dict(path: str, trusted: bool = False) -> Dict[str, torch.Tensor]:
    """Tensors of a checkpoint (ivnext's MMEngine training checkpoints included), weights-only unless ``trusted``."""
    return read_state_dict(path, trusted=trusted, opt_in='--trust-checkpoint')


def find_prefixes(state: Dict[str, torch.Tensor]) -> List[str]:
    """Every prefix under which an encoder (a ``...patch_embed.proj.weight`` key) is stored."""
    return sorted(k[:-len(ANCHOR)] for k in state if k.endswith(ANCHOR))


def choose_prefix(state: Dict[str, torch.Tensor], prefix: Optional[str] = None) -> str:
    """The encoder's prefix: ``prefix`` if given, else the only candidate, else ``backbone.``.

    Raises:
        KeyError: No encoder under ``prefix`` / in the file, or several candidates and none is ``backbone.``.
    """
    candidates = find_prefixes(state)
    if prefix is not None:
        if prefix not in candidates:
            raise KeyError(f'no encoder keys under --prefix {prefix!r} (no {prefix}{ANCHOR}); encoders found under '
                           f'{candidates or "no prefix at all"}')
        return prefix
    if not candidates:
        raise KeyError(f'no InternVideo-Next encoder found: no key ends with {ANCHOR!r}')
    if len(candidates) == 1:
        return candidates[0]
    if 'backbone.' in candidates:
        return 'backbone.'
    raise KeyError(f'several encoders found under prefixes {candidates}; choose one with --prefix')


def infer_shape(enc: Dict[str, torch.Tensor]) -> dict:
    """Encoder hyper-parameters readable from the weights (those that decide its key names and sizes)."""
    proj = enc[ANCHOR]  # (C, in_channels, tubelet, p, p)
    block_ids = {int(m.group(1)) for k in enc for m in [re.match(r'blocks\.(\d+)\.', k)] if m}
    if not block_ids:
        raise KeyError('the encoder has no blocks.N.* keys')
    embed_dims = proj.shape[0]
    hidden = enc['blocks.0.mlp.fc1.weight'].shape[0] if 'blocks.0.mlp.fc1.weight' in enc else 4 * embed_dims
    clip = enc.get('clip_projector.cross_attn.proj.weight')
    return dict(embed_dims=embed_dims, num_layers=max(block_ids) + 1, mlp_ratio=hidden / embed_dims,
                in_channels=proj.shape[1], tubelet_size=proj.shape[2], patch_size=proj.shape[3],
                num_cls_tokens=enc['cls_token'].shape[1] if 'cls_token' in enc else 4,
                with_clip_projector=clip is not None, clip_embed_dims=None if clip is None else clip.shape[0])


def expected_keys(shape: dict) -> List[str]:
    """State-dict names of an :class:`InternVideoNextViT` of ``shape`` (built narrow: names only)."""
    p, u = shape['patch_size'], shape['tubelet_size']
    model = InternVideoNextViT(
        arch=dict(embed_dims=16, num_layers=shape['num_layers'], num_heads=1, mlp_ratio=1.0), img_size=p,
        patch_size=p, num_frames=u, tubelet_size=u, in_channels=shape['in_channels'],
        num_cls_tokens=shape['num_cls_tokens'], with_clip_projector=shape['with_clip_projector'], clip_embed_dims=16,
        clip_num_heads=1, use_flash_attn=False)
    return list(model.state_dict().keys())


def export_backbone(src: str, dst: str, prefix: Optional[str] = None, strict: bool = False,
                    out_prefix: str = 'backbone.', trusted: bool = False) -> Tuple[dict, List[str]]:
    """Extract the encoder of ``src`` and save it to ``dst`` under ``out_prefix``.

    Args:
        src: Input checkpoint (any stage, a recognizer, or released weights).
        dst: Output ``.pth`` or ``.safetensors`` path.
        prefix: Encoder prefix in ``src``; auto-detected when None.
        strict: Fail on encoder keys that :class:`InternVideoNextViT` does not have (otherwise dropped).
        out_prefix: Prefix of the written keys (``backbone.`` for mmaction2 recognizers).
        trusted: Unpickle ``src`` in full (only for a file you trust).

    Returns:
        tuple: the saved ``meta`` dict and the list of dropped (unexpected) keys.
    """
    state = load_any_state_dict(src, trusted)
    prefix = choose_prefix(state, prefix)
    enc = OrderedDict((k[len(prefix):], v) for k, v in state.items() if k.startswith(prefix))
    shape = infer_shape(enc)
    wanted = expected_keys(shape)
    missing = [k for k in wanted if k not in enc]
    unexpected = [k for k in enc if k not in set(wanted)]
    if missing:
        raise KeyError(f'the encoder under {prefix!r} in {src} lacks {missing}')
    if unexpected and strict:
        raise KeyError(f'the encoder under {prefix!r} in {src} has keys InternVideoNextViT does not: {unexpected}')
    out = OrderedDict((f'{out_prefix}{k}', enc[k].detach().clone().contiguous()) for k in wanted)
    meta = dict(source=osp.abspath(src), source_prefix=prefix, ivnext_version=ivnext.__version__,
                encoder=dict(type='InternVideoNextViT', **shape),
                pos_embed_rows=int(enc['pos_embed'].shape[1]) if 'pos_embed' in enc else None, dropped=unexpected)
    save_state_dict(out, dst, meta)
    return meta, unexpected



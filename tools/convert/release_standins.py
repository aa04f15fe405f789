"""Importing the authors' Stage-1 / Stage-2 training modules on a CPU, without their CUDA-only dependencies.

Used only by ``verify_training_equivalence.py``, inside its own process. The authors' repository
(``InternVideo-Next/``) imports flash-attn (varlen attention, fused RMSNorm, fused MLP) and runs ModernBERT
on transformers' flash-attention-2 path. Here:

* flash-attn's modules are installed in ``sys.modules`` as stand-ins that refuse to run: the models are built
  with ``use_flash_attn=False, use_fused_rmsnorm=False, use_fused_mlp=False``, their plain-PyTorch paths;
* ModernBERT's flash-attention-2 path (``MODERNBERT_ATTENTION_FUNCTION['flash_attention_2']`` of transformers
  4.x) is replaced by :func:`varlen_attention_standin`, the same maths in plain PyTorch and in the input's
  precision: rotary embedding with positions restarting at 0 in each packed sequence (``cu_seqlens``),
  then softmax attention inside each sequence, restricted to ``|i - j| <= window`` on local layers;
* the release's own ``diffusion`` package is imported from the checkout; its samplers put every timestep
  tensor on 'cuda' (``th.tensor(...).cuda()``): :func:`cuda_is_identity` makes ``Tensor.cuda`` a no-op for
  the duration of a call.

A few statements of the release are changed in memory when imported (the files on disk are untouched),
:data:`SOURCE_FIXES`. ``models/siglip_teacher.py`` imports a ``.transforms`` module that the repository does not
have and puts its resized position table on 'cuda': the import is dropped (the tool pre-processes frames itself)
and the table stays on the model's device. Stage 1 has a start-up bug: ``InternVideo2.forward`` decodes
``x_clip[idx]`` in its alignment-decoder loop, where ``idx`` is the encoder-block loop's last index
(``depth - 1``). With ``clip_return_layer=6 < depth`` (the release scripts) that raises ``IndexError``; the
obvious intent, decoder i on returned layer i, is used.
"""
import contextlib
import importlib.util
import os.path as osp
import sys
import types
from typing import Dict, Sequence

import torch

FLASH_ATTN_STUBS: Dict[str, Sequence[str]] = {
    'flash_attn': [], 'flash_attn.modules': [], 'flash_attn.modules.mlp': ['FusedMLP'], 'flash_attn.ops': [],
    'flash_attn.ops.rms_norm': ['DropoutAddRMSNorm'],
    'flash_attn.flash_attn_interface': ['flash_attn_varlen_qkvpacked_func'],
    'flash_attn.bert_padding': ['unpad_input', 'pad_input'],
}

# (old, new) source replacements applied when a release file is imported; see the module docstring.
SOURCE_FIXES = {
    # models/siglip_teacher.py imports a module that the release does not have (``from .transforms import *``,
    # whose ``GroupDenormalize`` is nowhere in the repository) and moves the resized position table to 'cuda'.
    # The tool does the teacher's pre-processing itself (engine_for_stage1's resize, then the evident
    # de-normalisation) and keeps the table on the model's device.
    'siglip_teacher.py': [
        ('from .transforms import *', ''),
        ("nn.Embedding.from_pretrained(pos_embed, freeze=True).to('cuda'), "
         "torch.arange(new_grid ** 2).expand((1, -1)).to('cuda')",
         'nn.Embedding.from_pretrained(pos_embed, freeze=True).to(pos_embed.device), '
         'torch.arange(new_grid ** 2, device=pos_embed.device).expand((1, -1))'),
    ],
    'InternVideo_next_s1.py': [
        ('for clip_decoder in self.clip_decoder:\n'
         '            x_clip_align.append(clip_decoder(x_clip[idx]',
         'for decoder_idx, clip_decoder in enumerate(self.clip_decoder):\n'
         '            x_clip_align.append(clip_decoder(x_clip[decoder_idx]'),
    ],
}


def _refusing_module(name: str, attrs: Sequence[str]) -> types.ModuleType:
    module = types.ModuleType(name)

    def refuse(*args, **kwargs):
        raise RuntimeError(f'{name} is not available here; build the release models on their plain PyTorch paths')

    for attr in attrs:
        setattr(module, attr, refuse)
    return module


def install_flash_attn_stubs() -> list:
    """Put refusing flash-attn modules in ``sys.modules`` (only those not already importable); returns their names.

    transformers' availability checks (``importlib.util.find_spec``) and its ModernBERT module run first, so
    that they see the real state (no flash-attn) rather than the stand-ins.
    """
    from transformers.models.modernbert import modeling_modernbert  # noqa: F401
    from transformers.utils import is_flash_attn_2_available
    is_flash_attn_2_available()
    installed = []
    for name, attrs in FLASH_ATTN_STUBS.items():
        if name not in sys.modules:
            sys.modules[name] = _refusing_module(name, attrs)
            installed.append(name)
    return installed


def _import_package(name: str, folder: str) -> types.ModuleType:
    init = osp.join(folder, '__init__.py')
    if osp.isfile(init):
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[folder])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        module = types.ModuleType(name)
        module.__path__ = [folder]
        sys.modules[name] = module
    return module


def import_release_file(release_dir: str, filename: str) -> types.ModuleType:
    """Import ``models/<filename>`` of the authors' ``InternVideo-Next`` folder as ``release_models.<stem>``.

    Args:
        release_dir: The ``InternVideo-Next`` folder of a checkout of the authors' repository.
        filename: e.g. ``'InternVideo_next_s1.py'``.

    Returns:
        module: The imported module (with :data:`SOURCE_FIXES` applied).
    """
    path = osp.join(release_dir, 'models', filename)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} not found; pass the InternVideo-Next folder of the authors\' repository')
    stubs = install_flash_attn_stubs()
    try:
        return _import_release_file(release_dir, filename, path)
    finally:  # the release modules keep their references; later availability checks see no flash-attn
        for stub in stubs:
            sys.modules.pop(stub, None)


def _import_release_file(release_dir: str, filename: str, path: str) -> types.ModuleType:
    if 'diffusion' not in sys.modules:
        _import_package('diffusion', osp.join(release_dir, 'diffusion'))
    if 'release_models' not in sys.modules:
        package = types.ModuleType('release_models')
        package.__path__ = [osp.dirname(path)]
        sys.modules['release_models'] = package
    name = f'release_models.{osp.splitext(filename)[0]}'
    if name in sys.modules:
        return sys.modules[name]
    with open(path) as f:
        source = f.read()
    for old, new in SOURCE_FIXES.get(filename, []):
        if old not in source:
            raise RuntimeError(f'{filename}: the statement to fix was not found; is this the documented commit?')
        source = source.replace(old, new)
    module = types.ModuleType(name)
    module.__file__ = path
    module.__package__ = 'release_models'
    sys.modules[name] = module
    exec(compile(source, path, 'exec'), module.__dict__)
    return module


@contextlib.contextmanager
def cuda_is_identity():
    """``Tensor.cuda()`` returns the tensor itself inside the block (the release's samplers call it)."""
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.cuda = original


def varlen_attention_standin(module, qkv: torch.Tensor, rotary_emb, cu_seqlens: torch.Tensor, max_seqlen: int,
                             local_attention, bs: int, dim: int, **kwargs):
    """Plain-PyTorch ModernBERT flash-attention-2 path (transformers 4.x ``flash_attention_forward``).

    Args:
        module: The ``ModernBertAttention`` calling it (for its rotary embedding and dropout).
        qkv: (total, 3, H, D) packed sequences.
        rotary_emb: ``ModernBertRotaryEmbedding`` (the SDPA-path module, same inverse frequencies).
        cu_seqlens: (S + 1,) int cumulative sequence lengths.
        max_seqlen: Longest sequence.
        local_attention: (w, w) half window, or (-1, -1) for global attention.
        bs: Rows of the hidden states (= total).
        dim: H * D.

    Returns:
        tuple: (total, H*D) attention output.
    """
    from transformers.models.modernbert.modeling_modernbert import apply_rotary_pos_emb
    bounds = cu_seqlens.tolist()
    positions = torch.cat([torch.arange(e - s, device=qkv.device) for s, e in zip(bounds[:-1], bounds[1:])])
    cos, sin = rotary_emb(qkv, position_ids=positions[None])
    q, k, v = qkv.unsqueeze(0).transpose(3, 1).unbind(dim=2)  # (1, H, total, D)
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    outs = []
    for s, e in zip(bounds[:-1], bounds[1:]):
        qs, ks, vs = q[..., s:e, :], k[..., s:e, :], v[..., s:e, :]
        mask = None
        if tuple(local_attention) != (-1, -1):
            idx = torch.arange(e - s, device=qkv.device)
            mask = (idx[:, None] - idx[None, :]).abs() <= int(local_attention[0])
        scores = (qs @ ks.transpose(-1, -2)) * qs.shape[-1]**-0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, float('-inf'))
        outs.append(scores.softmax(-1) @ vs)
    out = torch.cat(outs, dim=2).transpose(1, 2)  # (1, total, H, D)
    return (out.reshape(bs, dim), )


def use_varlen_standin(bert_module: torch.nn.Module) -> None:
    """Run a ModernBERT built on the SDPA path through :func:`varlen_attention_standin`.

    The release calls the layers with packed ``(total, C)`` hidden states and ``cu_seqlens``, which only the
    flash-attention-2 path accepts; the layers' configs are switched to that path and its function replaced.
    """
    from transformers.models.modernbert import modeling_modernbert as mb
    mb.MODERNBERT_ATTENTION_FUNCTION['flash_attention_2'] = varlen_attention_standin
    for sub in bert_module.modules():
        config = getattr(sub, 'config', None)
        if config is not None:
            config._attn_implementation = 'flash_attention_2'

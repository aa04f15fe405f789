"""Check that ivnext's encoder reproduces the authors' released encoder module on the same weights.

The authors' module is imported from a local copy of their repository (``InternVideo-Next/models``); its
flash-attn imports are satisfied by modules that refuse to run, and it is built on its plain PyTorch path
(``use_flash_attn=False``). Both models get the authors' randomly initialised weights (or a released
checkpoint with ``--checkpoint``), and the final patch tokens and the pooled clip embedding are compared.

Example::

    python tools/convert/verify_release_equivalence.py /path/to/InternVideo/InternVideo-Next --arch base \
        --frames 4 --size 224
"""
import argparse
import importlib.util
import os.path as osp
import sys
import tempfile
import types

import torch

import ivnext  # noqa: F401  (compat fixes before timm is imported)
from ivnext.models.backbones import InternVideoNextViT
from ivnext.utils.checkpoint import load_encoder_checkpoint, read_state_dict

RELEASE_ARCHS = {
    'base': dict(embed_dim=768, depth=12, num_heads=12, mlp_ratio=4),
    'large': dict(embed_dim=1024, depth=24, num_heads=16, mlp_ratio=4),
}


def _refusing_module(name: str, attrs) -> types.ModuleType:
    module = types.ModuleType(name)

    def refuse(*args, **kwargs):
        raise RuntimeError(f'{name} is not available; the release encoder must run with use_flash_attn=False')

    for attr in attrs:
        setattr(module, attr, refuse)
    return module


def import_release_encoder(release_dir: str):
    """Import ``models/InternVideo_next.py`` from the authors' repository without flash-attn."""
    path = osp.join(release_dir, 'models', 'InternVideo_next.py')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} not found; pass the InternVideo-Next folder of the authors\' repository')
    stubs = {
        'flash_attn': [], 'flash_attn.modules': [], 'flash_attn.modules.mlp': ['FusedMLP'], 'flash_attn.ops': [],
        'flash_attn.ops.rms_norm': ['DropoutAddRMSNorm'],
        'flash_attn.flash_attn_interface': ['flash_attn_varlen_qkvpacked_func'],
        'flash_attn.bert_padding': ['unpad_input', 'pad_input'],
    }
    for name, attrs in stubs.items():
        sys.modules.setdefault(name, _refusing_module(name, attrs))
    package = types.ModuleType('release_models')
    package.__path__ = [osp.dirname(path)]
    sys.modules['release_models'] = package
    spec = importlib.util.spec_from_file_location('release_models.InternVideo_next', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def compare(release_dir: str, arch: str, frames: int, size: int, checkpoint: str = None, seed: int = 0) -> dict:
    """Build both encoders on the same weights and return max abs differences."""
    torch.manual_seed(seed)
    release = import_release_encoder(release_dir)
    theirs = release.InternVideo2(img_size=size, patch_size=14, num_frames=frames, use_flash_attn=False,
                                  use_fused_rmsnorm=False, use_fused_mlp=False, drop_path_rate=0.0,
                                  clip_embed_dim=768, attn_pool_num_heads=16, **RELEASE_ARCHS[arch]).eval()
    if checkpoint:
        theirs.load_state_dict(read_state_dict(checkpoint), strict=False)
    ours = InternVideoNextViT(arch=arch, img_size=size, num_frames=frames, out_type='tokens').eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'release_encoder.pth')
        torch.save(theirs.state_dict(), path)
        missing, unexpected = load_encoder_checkpoint(ours, path, strict=True)
    x = torch.randn(2, 3, frames, size, size)
    with torch.no_grad():
        ref_tokens = theirs(x)
        ref_pooled = theirs(x, projected=True)
        tokens = ours(x)[:, ours.num_cls_tokens:]
        pooled = ours.pool(ours(x))
    return dict(arch=arch, frames=frames, size=size, missing=missing, unexpected=unexpected,
                tokens_max_abs_diff=(tokens - ref_tokens).abs().max().item(),
                pooled_max_abs_diff=(pooled - ref_pooled).abs().max().item(),
                token_scale=ref_tokens.abs().max().item())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('release_dir', help='the InternVideo-Next folder of the authors\' repository')
    parser.add_argument('--arch', default='base', choices=sorted(RELEASE_ARCHS))
    parser.add_argument('--frames', type=int, default=4)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--checkpoint', help='released weights to load into both models')
    parser.add_argument('--tolerance', type=float, default=1e-4)
    args = parser.parse_args()
    result = compare(args.release_dir, args.arch, args.frames, args.size, args.checkpoint)
    for key, value in result.items():
        print(f'{key}: {value}')
    ok = max(result['tokens_max_abs_diff'], result['pooled_max_abs_diff']) < args.tolerance
    print('EQUIVALENT' if ok else 'DIFFERENT')
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()

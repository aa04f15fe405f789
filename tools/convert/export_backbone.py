"""Export the InternVideo-Next encoder of any checkpoint as an mmaction2-loadable backbone checkpoint.

Stage-1 / Stage-2 pretraining checkpoints, fine-tuned recognizers and the authors' released weights all hold
the encoder somewhere under a prefix (``backbone.``, ``student.encoder.``, ``module.`` or none). This tool
finds it (or takes ``--prefix``), checks its key names against :class:`InternVideoNextViT` built with the
same shape, and writes ``{'state_dict': {'backbone.<name>': tensor}, 'meta': {...}}`` (plain values only, so it
loads weights-only), which mmaction2's ``load_from``, ``init_cfg=dict(type='Pretrained', checkpoint=...,
prefix='backbone.')`` and ivnext's ``backbone.pretrained`` all read; or, for a ``.safetensors`` output, the
same tensors with ``meta`` as JSON metadata (``backbone.pretrained`` and other libraries read it).

The input is read weights-only (ivnext's own training checkpoints included); ``--trust-checkpoint`` unpickles
it in full, for a file you trust that holds other Python objects.

Examples::

    python tools/convert/export_backbone.py work_dirs/stage2/epoch_100.pth checkpoints/ivnext_vit-b_stage2.pth
    python tools/convert/export_backbone.py ckpt.pth out.pth --prefix student.encoder.
    python tools/convert/export_backbone.py work_dirs/stage2/epoch_100.pth ivnext_vit-b_stage2.safetensors
"""
import argparse

import ivnext  # noqa: F401  (compat fixes and registration)
from ivnext.convert.export_backbone import export_backbone


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export the InternVideo-Next encoder of a checkpoint for mmaction2')
    parser.add_argument('src', help='input checkpoint (Stage-1/2, recognizer, or released weights)')
    parser.add_argument('dst', help='output .pth or .safetensors')
    parser.add_argument('--prefix', default=None,
                        help="encoder prefix in the input, e.g. 'backbone.', 'student.encoder.', '' "
                        "(default: auto-detect; 'backbone.' wins when several encoders are stored)")
    parser.add_argument('--out-prefix', default='backbone.', help="prefix of the written keys (default 'backbone.')")
    parser.add_argument('--strict', action='store_true', help='fail on encoder keys the model does not have')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='unpickle the input in full (only for a file you trust; it can run code stored in it)')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    meta, dropped = export_backbone(args.src, args.dst, args.prefix, args.strict, args.out_prefix,
                                    args.trust_checkpoint)
    enc = meta['encoder']
    print(f"exported encoder (prefix {meta['source_prefix']!r}: width {enc['embed_dims']}, {enc['num_layers']} "
          f"blocks, clip projector {enc['with_clip_projector']}) to {args.dst}")
    if dropped:
        print(f'dropped keys the encoder does not have: {dropped}')


if __name__ == '__main__':
    main()

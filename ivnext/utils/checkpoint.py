"""Loading encoder weights: the authors' released checkpoints and ivnext / mmaction2 checkpoints."""
import os.path as osp
import pickle
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional, Tuple

import torch
from mmengine.logging import MMLogger
from torch import nn

from ivnext.models.layers import interpolate_pos_embed

# Wrappers seen around encoder weights: DeepSpeed/DDP ('module.'), the release's model attributes, and
# mmaction2 recognizers ('backbone.').
KNOWN_PREFIXES: Tuple[str, ...] = ('module.', 'model.', 'encoder.', 'vision_encoder.', 'backbone.', 'student.')
CONTAINER_KEYS: Tuple[str, ...] = ('state_dict', 'model', 'module', 'state_dict_ema')


def read_state_dict(path: str, allow_pickle: bool = False) -> Dict[str, torch.Tensor]:
    """Read tensors from a safetensors file or a torch checkpoint, with ``weights_only=True``.

    Args:
        path: ``.safetensors``, ``.bin``, ``.pt`` or ``.pth`` file, or a directory holding one
            (``model.safetensors`` or ``pytorch_model.bin``, as Hugging Face repositories do), or a DeepSpeed
            checkpoint directory (``iter_N.pth/mp_rank_00_model_states.pt``).
        allow_pickle: If the weights-only load fails because the file pickles Python objects (an MMEngine
            training checkpoint holds a message hub and metadata), load it in full. Only for checkpoints you
            trust, i.e. your own training runs; foreign weights stay weights-only.

    Returns:
        dict: The flat tensor dict (unwrapped from 'state_dict' / 'model' / 'module' containers).
    """
    if osp.isdir(path):
        # Hugging Face repositories, then a DeepSpeed checkpoint directory (module weights of model-parallel rank 0).
        for name in ('model.safetensors', 'pytorch_model.bin', 'model.pth', 'model.pt', 'mp_rank_00_model_states.pt'):
            if osp.isfile(osp.join(path, name)):
                path = osp.join(path, name)
                break
        else:
            if osp.isfile(osp.join(path, 'rank0.pth')):
                raise FileNotFoundError(f'{path} is a sharded FSDP checkpoint (one rank*.pth per process); train with '
                                        "strategy.state_dict_cfg='full' to get one full checkpoint file")
            raise FileNotFoundError(f'no model.safetensors / pytorch_model.bin / DeepSpeed model states in directory '
                                    f'{path}')
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist; set `pretrained` to a local file '
                                '(nothing is downloaded at run time)')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        state = load_file(path)
    else:
        try:
            state = torch.load(path, map_location='cpu', weights_only=True)
        except pickle.UnpicklingError:
            if not allow_pickle:
                raise
            MMLogger.get_current_instance().warning(
                f'{path} pickles Python objects besides tensors (an MMEngine training checkpoint); loading it in full')
            state = torch.load(path, map_location='cpu', weights_only=False)
    for key in CONTAINER_KEYS:
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise TypeError(f'{path} does not hold a state dict (got {type(state).__name__})')
    return state


def strip_prefixes(state: Dict[str, torch.Tensor], expected: Iterable[str],
                   prefixes: Iterable[str] = KNOWN_PREFIXES) -> Dict[str, torch.Tensor]:
    """Remove wrapper prefixes so keys match ``expected`` (repeats until nothing changes).

    A prefix is removed only where the stripped key is one the model expects, so unrelated entries
    (a recognizer's ``cls_head.*``, a teacher's weights) stay visible as unexpected keys.
    """
    expected = set(expected)
    out = OrderedDict()
    for key, value in state.items():
        name = key
        changed = True
        while name not in expected and changed:
            changed = False
            for prefix in prefixes:
                if name.startswith(prefix):
                    name = name[len(prefix):]
                    changed = True
                    break
        out[name if name in expected else key] = value
    return out


def adapt_pos_embed(pos_embed: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """Resize a (1, cls + N_src, C) position table to ``model``'s grid (temporal and spatial)."""
    num_cls = model.num_cls_tokens
    target = model.pos_embed
    if pos_embed.shape == target.shape:
        return pos_embed
    n_src = pos_embed.shape[1] - num_cls
    t_dst, h_dst, w_dst = model.grid_size
    # Source grid: square spatial side; temporal length from the remaining count.
    for t_src in range(1, n_src + 1):
        side = round((n_src / t_src)**0.5)
        if t_src * side * side == n_src and (side == h_dst or t_src == t_dst):
            break
    else:
        raise ValueError(f'cannot infer the source grid of a position table with {n_src} patch rows')
    patch = interpolate_pos_embed(pos_embed[:, num_cls:], (t_src, side, side), model.grid_size)
    return torch.cat([pos_embed[:, :num_cls], patch], dim=1)


def load_encoder_checkpoint(model: nn.Module, path: str, strict: bool = False, logger: Optional[MMLogger] = None,
                            allow_pickle: bool = False) -> Tuple[List[str], List[str]]:
    """Load released or ivnext encoder weights into an :class:`InternVideoNextViT`.

    Every missing and unexpected key is logged by name; the position table is interpolated when the
    checkpoint was trained at another clip size (e.g. 16 -> 32 frames).

    Args:
        model: The encoder.
        path: Checkpoint file or directory (see :func:`read_state_dict`).
        strict: Raise if any key is missing or unexpected.
        logger: Logger (MMEngine's current one by default).
        allow_pickle: Accept MMEngine training checkpoints (see :func:`read_state_dict`); trusted files only.

    Returns:
        tuple: (missing keys, unexpected keys).
    """
    logger = logger or MMLogger.get_current_instance()
    expected = model.state_dict()
    state = strip_prefixes(read_state_dict(path, allow_pickle), expected.keys())
    if 'pos_embed' in state:
        state['pos_embed'] = adapt_pos_embed(state['pos_embed'], model)
    mismatched = [k for k, v in state.items() if k in expected and v.shape != expected[k].shape]
    if mismatched:
        detail = ', '.join(f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}'
                           for k in mismatched)
        raise ValueError(f'shape mismatch loading {path}: {detail}; check the encoder `arch` / sizes')
    result = model.load_state_dict(state, strict=False)
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if missing:
        logger.warning(f'missing keys loading {path}: {missing}')
    if unexpected:
        logger.warning(f'unexpected keys loading {path}: {unexpected}')
    if strict and (missing or unexpected):
        raise KeyError(f'{path} does not match the encoder: missing {missing}, unexpected {unexpected}')
    logger.info(f'loaded encoder weights from {path} ({len(state) - len(unexpected)} tensors)')
    return missing, unexpected

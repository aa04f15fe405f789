"""Reading checkpoints safely, and loading encoder weights (the authors' releases, ivnext / mmaction2 checkpoints).

Every file is read with ``torch.load(weights_only=True)``: tensors, containers and plain Python values only, so
a checkpoint cannot run code. MMEngine training checkpoints (written by MMEngine's ``CheckpointHook`` or ivnext's
``SafeCheckpointHook``) also hold a message hub (MMEngine ``HistoryBuffer`` objects holding numpy arrays) and
scheduler states; exactly those types are allowed (:func:`mmengine_checkpoint_globals`), and only inside
:func:`checkpoint_load_scope` (ivnext's own load calls), never process-wide. A file that needs anything else is
refused with an :class:`UntrustedCheckpointError` naming the opt-in of that call (``--trust-checkpoint``, a config
field such as ``trust_checkpoint=True``); with the opt-in it is unpickled in full.
"""
import os
import os.path as osp
import pickle
import zipfile
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import torch
from mmengine.logging import MMLogger
from torch import nn

from ivnext.models.layers import interpolate_pos_embed

# Wrappers seen around encoder weights: DeepSpeed/DDP ('module.'), the release's model attributes, and
# mmaction2 recognizers ('backbone.').
KNOWN_PREFIXES: Tuple[str, ...] = ('module.', 'model.', 'encoder.', 'vision_encoder.', 'backbone.', 'student.')
CONTAINER_KEYS: Tuple[str, ...] = ('state_dict', 'model', 'module', 'state_dict_ema')
DEFAULT_OPT_IN = '`trusted=True`'
# The statistics a HistoryBuffer pickles by name (MMEngine's defaults).
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds Python objects that a weights-only load does not allow."""


class CheckpointMismatchError(ValueError):
    """A checkpoint's weights do not fit the model (missing, unexpected or differently shaped keys)."""


def _history_buffer_statistic(owner: Any, name: str) -> Any:
    """Stands in for ``getattr`` while unpickling: only ``HistoryBuffer``'s statistics methods resolve.

    A ``HistoryBuffer`` pickles its statistics table as ``getattr(HistoryBuffer, 'mean')`` and the like; a general
    ``getattr`` would let a file reach any attribute of any allowed object, so nothing else is answered.
    """
    from mmengine.logging import HistoryBuffer
    if owner is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'getattr({owner!r}, {name!r}) is not allowed in a weights-only checkpoint')


# Plain numbers: the dtypes a message hub's numpy arrays and scalars may have.
NUMPY_DTYPE_NAMES = ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'float16',
                     'float32', 'float64', 'longdouble', 'complex64', 'complex128')


def mmengine_checkpoint_globals() -> List[Any]:
    """The non-tensor types in MMEngine training checkpoints: what MMEngine's ``CheckpointHook`` and ivnext's
    ``SafeCheckpointHook`` write.

    - The message hub stores ``HistoryBuffer`` objects (logged scalars as numpy arrays, and their statistics
      methods by name) and numpy scalars (``multiarray.scalar`` of a dtype), e.g. ``eta`` and ``best_score``.
    - FlexibleRunner (DeepSpeed) checkpoints hold MMEngine ``ConfigDict`` s (a ``dict`` subclass filled item by
      item).
    - numpy >= 2 writes its array and scalar rebuilders as ``numpy._core.multiarray.*``, numpy 1 as
      ``numpy.core.multiarray.*``: both names are accepted, so a checkpoint written under either loads.

    Rebuilding these only allocates arrays of plain numbers and dictionaries of already-allowed values; they run no
    code of the file's choosing. Anything else stays refused, except what torch's weights-only load allows itself
    (tensors, containers, ``collections.OrderedDict`` / ``Counter``: the milestones of ``MultiStepLR``).
    """
    import numpy as np
    from mmengine.config import ConfigDict
    from mmengine.logging import HistoryBuffer
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    dtypes = list(dict.fromkeys(type(np.dtype(name)) for name in NUMPY_DTYPE_NAMES))
    rebuilders = [(function, f'numpy.{package}.multiarray.{function.__name__}')
                  for function in (_reconstruct, scalar) for package in ('_core', 'core')]
    return [HistoryBuffer, ConfigDict, *rebuilders, np.ndarray, np.dtype, *dtypes,
            (_history_buffer_statistic, 'builtins.getattr')]


@contextmanager
def checkpoint_load_scope(trusted: bool = False) -> Iterator[None]:
    """Within the block, weights-only loads accept MMEngine checkpoints; ``trusted`` loads unpickle in full.

    The allow-list is added for the block only (``torch.serialization.safe_globals``). ``trusted`` sets
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` for the block, so loads that do not choose ``weights_only`` themselves
    (MMEngine's loader) unpickle in full: only for a file the user opted in to trust.
    """
    with torch.serialization.safe_globals(mmengine_checkpoint_globals()):
        if not trusted:
            yield
            return
        previous = os.environ.get('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')
        os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
            else:
                os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = previous


def refusal_message(path: str, err: BaseException, opt_in: str = DEFAULT_OPT_IN) -> str:
    """The message for a checkpoint a weights-only load refused: what it holds and how to opt in."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    marker = next((i for i, line in enumerate(lines) if 'WeightsUnpickler error' in line), None)
    if marker is not None:
        detail = (lines[marker].split('WeightsUnpickler error:', 1)[-1].strip()
                  or (lines[marker + 1] if marker + 1 < len(lines) else ''))
    else:
        detail = lines[0] if lines else type(err).__name__
    detail = detail.split(' Please use `torch.serialization')[0]
    return (f'{path} holds Python objects that a weights-only load does not allow ({detail}); unpickling it could '
            f'run code stored in the file, so it was not loaded. If you trust this file (you wrote it yourself), '
            f'load it with {opt_in}; otherwise ask its author for a .safetensors or weights-only file.')


def load_checkpoint_file(path: str, map_location: Any = 'cpu', trusted: bool = False,
                         opt_in: str = DEFAULT_OPT_IN) -> Any:
    """``torch.load`` a checkpoint file weights-only (MMEngine checkpoints allowed), or in full when ``trusted``.

    Args:
        path: ``.pth`` / ``.pt`` / ``.bin`` file.
        map_location: As for ``torch.load``.
        trusted: Unpickle arbitrary objects (only for files you trust).
        opt_in: How the caller's user opts in, named in the refusal message (e.g. ``--trust-checkpoint``).

    Raises:
        UntrustedCheckpointError: The file needs types a weights-only load refuses and ``trusted`` is False.
        RuntimeError: The file is not a readable torch checkpoint (truncated, not a zip/pickle); names the file.
    """
    if trusted:
        return torch.load(path, map_location=map_location, weights_only=False)
    try:
        with checkpoint_load_scope():
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UntrustedCheckpointError(refusal_message(path, err, opt_in)) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile) as err:
        raise RuntimeError(f'cannot read checkpoint {path}: {err} (truncated or not a torch checkpoint)') from err


def read_state_dict(path: str, trusted: bool = False, opt_in: str = DEFAULT_OPT_IN) -> Dict[str, torch.Tensor]:
    """Read tensors from a safetensors file or a torch checkpoint, weights-only unless ``trusted``.

    Args:
        path: ``.safetensors``, ``.bin``, ``.pt`` or ``.pth`` file, or a directory holding one
            (``model.safetensors`` or ``pytorch_model.bin``, as Hugging Face repositories do), or a DeepSpeed
            checkpoint directory (``iter_N.pth/mp_rank_00_model_states.pt``).
        trusted: Unpickle the file in full. ivnext's own training checkpoints load without it; use it only for
            a file you trust that holds other Python objects.
        opt_in: The caller's opt-in, named when a file is refused (see :func:`load_checkpoint_file`).

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
        state = load_checkpoint_file(path, 'cpu', trusted, opt_in)
    for key in CONTAINER_KEYS:
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise TypeError(f'{path} does not hold a state dict (got {type(state).__name__})')
    return state


def save_state_dict(state: Dict[str, torch.Tensor], path: str, meta: Optional[dict] = None) -> None:
    """Write weights for others to read: ``.safetensors`` (tensors + string metadata) or a weights-only ``.pth``.

    ``.safetensors`` files store ``meta`` as JSON under the ``ivnext_meta`` metadata key; ``.pth`` files hold
    ``{'state_dict': state, 'meta': meta}`` with plain values only, so both load without trusting the file.
    """
    import json
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tensors = OrderedDict((k, v.detach().cpu().contiguous()) for k, v in state.items())
    if path.endswith('.safetensors'):
        from safetensors.torch import save_file
        save_file(tensors, path, metadata={'ivnext_meta': json.dumps(meta or {}, default=str)})
    else:
        torch.save({'state_dict': tensors, 'meta': meta or {}}, path)


def fit_report(expected: Dict[str, torch.Tensor], state: Dict[str, torch.Tensor]) -> Dict[str, List[str]]:
    """Keys of ``state`` that do not fit ``expected``: ``missing``, ``unexpected``, ``mismatched`` (with shapes)."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}' for k, v in state.items()
                  if k in expected and hasattr(v, 'shape') and tuple(v.shape) != tuple(expected[k].shape)]
    return dict(missing=missing, unexpected=unexpected, mismatched=mismatched)


def format_fit_report(path: str, report: Dict[str, List[str]], opt_in: str, limit: int = 20) -> str:
    """A message naming the keys of ``path`` that do not fit, and the partial-load opt-in."""
    parts = []
    for kind in ('mismatched', 'missing', 'unexpected'):
        keys = report[kind]
        if keys:
            shown = ', '.join(keys[:limit]) + (f', ... ({len(keys) - limit} more)' if len(keys) > limit else '')
            parts.append(f'{len(keys)} {kind}: {shown}')
    return (f'checkpoint {path} does not fit the model; ' + '; '.join(parts)
            + f'. Check the config / checkpoint pair, or load what fits with {opt_in}.')


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
                            trusted: bool = False, opt_in: str = DEFAULT_OPT_IN) -> Tuple[List[str], List[str]]:
    """Load released or ivnext encoder weights into an :class:`InternVideoNextViT`.

    Every missing and unexpected key is logged by name; the position table is interpolated when the
    checkpoint was trained at another clip size (e.g. 16 -> 32 frames).

    Args:
        model: The encoder.
        path: Checkpoint file or directory (see :func:`read_state_dict`).
        strict: Raise if any key is missing or unexpected.
        logger: Logger (MMEngine's current one by default).
        trusted: Unpickle the file in full (see :func:`read_state_dict`); trusted files only.
        opt_in: The caller's opt-in, named when a file is refused.

    Returns:
        tuple: (missing keys, unexpected keys).
    """
    logger = logger or MMLogger.get_current_instance()
    expected = model.state_dict()
    state = strip_prefixes(read_state_dict(path, trusted, opt_in), expected.keys())
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

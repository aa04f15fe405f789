"""Reading checkpoints safely, and :func:`load_weights`, the one way ivnext loads weights into a module.

Every file is read with ``torch.load(weights_only=True)``: tensors, containers and plain Python values only, so
a checkpoint cannot run code. MMEngine training checkpoints (written by MMEngine's ``CheckpointHook`` or ivnext's
``SafeCheckpointHook``) also hold a message hub (MMEngine ``HistoryBuffer`` objects holding numpy arrays) and
scheduler states; exactly those types are allowed (:func:`mmengine_checkpoint_globals`), and only inside
:func:`checkpoint_load_scope` (ivnext's own load calls), never process-wide. A file that needs anything else is
refused with an :class:`UntrustedCheckpointError` naming the opt-in of that call (``--trust-checkpoint``, a config
field such as ``trust_checkpoint=True``); with the opt-in it is unpickled in full.
"""
import contextvars
import json
import logging
import os
import os.path as osp
import pickle
import re
import struct
import zipfile
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import torch
from mmengine.logging import MMLogger
from torch import nn

# Wrappers seen around encoder weights: DeepSpeed/DDP ('module.'), the release's model attributes, and
# mmaction2 recognizers ('backbone.').
KNOWN_PREFIXES: Tuple[str, ...] = ('module.', 'model.', 'encoder.', 'vision_encoder.', 'backbone.', 'student.')
CONTAINER_KEYS: Tuple[str, ...] = ('state_dict', 'model', 'module', 'state_dict_ema')
DEFAULT_OPT_IN = '`trusted=True`'
# The statistics a HistoryBuffer pickles by name (MMEngine's defaults).
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds Python objects that a weights-only load does not allow."""


class CorruptCheckpointError(RuntimeError, ValueError):
    """A checkpoint file is damaged or not a checkpoint: truncated, a broken pickle, an impossible header.

    A ``RuntimeError`` as torch's own read errors, and a ``ValueError`` (a user error: the file is bad).
    """


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


# How the user opts in where they are (a command line names its flag); set by :func:`named_opt_in`.
_OPT_IN_OVERRIDE: contextvars.ContextVar = contextvars.ContextVar('ivnext_checkpoint_opt_in', default=None)
# Lines of torch's weights-only message that are advice rather than the reason.
_TORCH_BOILERPLATE = ('Weights only load failed', 'In PyTorch 2.6', 'Re-running `torch.load`', 'Check the documentation',
                      'Please file an issue', 'Please use `torch.serialization', 'You can use the following')
# A weights-only refusal of a Python object (as opposed to a damaged pickle).
_REFUSED_OBJECT = re.compile(r'GLOBAL|global|unsupported class|Unsupported class|instantiate|not an allowed',
                             re.IGNORECASE)


@contextmanager
def named_opt_in(text: str) -> Iterator[None]:
    """Within the block, refusals name ``text`` as the opt-in (e.g. ``--trust-checkpoint`` on a command line)."""
    token = _OPT_IN_OVERRIDE.set(text)
    try:
        yield
    finally:
        _OPT_IN_OVERRIDE.reset(token)


def current_opt_in(default: str = DEFAULT_OPT_IN) -> str:
    """The opt-in to name: the one set by :func:`named_opt_in`, else ``default``."""
    return _OPT_IN_OVERRIDE.get() or default


def unpickling_reason(err: BaseException) -> str:
    """torch's own reason for refusing a file (e.g. 'Trying to load unsupported GLOBAL posix.system ...'), without
    its general advice."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    reasons = []
    for line in lines:
        if 'WeightsUnpickler error:' in line:
            line = line.split('WeightsUnpickler error:', 1)[1].strip()
        line = line.split(' Please use `torch.serialization')[0].strip()
        if line and not line.startswith(_TORCH_BOILERPLATE):
            reasons.append(line)
    return ' '.join(reasons) or (lines[0] if lines else type(err).__name__)


def refused_an_object(err: BaseException) -> bool:
    """True when a weights-only load stopped at a Python object it does not allow; False for a damaged pickle."""
    return bool(_REFUSED_OBJECT.search(unpickling_reason(err)))


def refusal_message(path: str, err: BaseException, opt_in: str = DEFAULT_OPT_IN) -> str:
    """The message for a checkpoint a weights-only load refused: torch's reason and how to opt in."""
    detail = unpickling_reason(err)
    opt_in = current_opt_in(opt_in)
    return (f'{path} holds Python objects that a weights-only load does not allow ({detail}); unpickling it could '
            f'run code stored in the file, so it was not loaded. If you trust this file (you wrote it yourself), '
            f'load it with {opt_in}; otherwise ask its author for a .safetensors or weights-only file.')


def corrupt_message(path: str, err: BaseException) -> str:
    """The message for a checkpoint that cannot be read at all (damaged, truncated, absurd sizes)."""
    reason = unpickling_reason(err) if isinstance(err, pickle.UnpicklingError) else f'{type(err).__name__}: {err}'
    return (f'cannot read checkpoint {path}: it is damaged or not a torch checkpoint ({reason}); use another copy '
            'of the file')


def refuse_or_report(path: str, err: pickle.UnpicklingError, opt_in: str = DEFAULT_OPT_IN) -> Exception:
    """The error to raise for a weights-only load that failed with ``err``: untrusted object, or a damaged file."""
    if refused_an_object(err):
        return UntrustedCheckpointError(refusal_message(path, err, opt_in))
    return CorruptCheckpointError(corrupt_message(path, err))


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
        CorruptCheckpointError: The file is not a readable torch checkpoint (truncated, a broken pickle, an array
            too large to allocate); names the file.
    """
    try:
        if trusted:
            return torch.load(path, map_location=map_location, weights_only=False)
        with checkpoint_load_scope():
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if trusted:
            raise CorruptCheckpointError(corrupt_message(path, err)) from err
        raise refuse_or_report(path, err, opt_in) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, MemoryError, OverflowError, ValueError) as err:
        raise CorruptCheckpointError(f'cannot read checkpoint {path}: {type(err).__name__}: {err} (truncated, '
                                     'damaged or not a torch checkpoint)') from err


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
        state = load_safetensors(path)
    else:
        state = load_checkpoint_file(path, 'cpu', trusted, opt_in)
    for key in CONTAINER_KEYS:
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise TypeError(f'{path} does not hold a state dict (got {type(state).__name__})')
    return state


# Largest safetensors header read (the format's own limit is 100 MB).
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
SAFETENSORS_ITEM_SIZES = {'BOOL': 1, 'U8': 1, 'I8': 1, 'F8_E5M2': 1, 'F8_E4M3': 1, 'I16': 2, 'U16': 2, 'F16': 2,
                          'BF16': 2, 'I32': 4, 'U32': 4, 'F32': 4, 'I64': 8, 'U64': 8, 'F64': 8}


def read_safetensors_header(path: str) -> Dict[str, Tuple[str, Tuple[int, ...]]]:
    """``{name: (dtype, shape)}`` of a ``.safetensors`` file, read from its header without loading any tensor.

    The header is checked against the file: its length, its JSON, and every tensor's dtype, shape and byte range
    (inside the file, of the size the shape needs), so a damaged or crafted file is refused before anything is
    allocated for it.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CorruptCheckpointError: The header is damaged or does not describe the file; names the file.
    """
    def bad(reason: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(f'{path} is not a valid .safetensors file: {reason}; use another copy of it')

    if not osp.isfile(path):
        raise FileNotFoundError(f'weights file {path} does not exist')
    size = osp.getsize(path)
    if size < 8:
        raise bad(f'{size} bytes, shorter than the 8-byte header length')
    with open(path, 'rb') as f:
        (length,) = struct.unpack('<Q', f.read(8))
        if length > min(MAX_SAFETENSORS_HEADER, size - 8):
            raise bad(f'header length {length} exceeds the file ({size} bytes) or the 100 MB limit')
        raw = f.read(length)
    try:
        header = json.loads(raw.decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as err:
        raise bad(f'header is not UTF-8 JSON ({err})') from None
    if not isinstance(header, dict):
        raise bad(f'header is a JSON {type(header).__name__}, not an object')
    data_size = size - 8 - length
    out = {}
    for name, entry in header.items():
        if name == '__metadata__':
            continue
        if not isinstance(entry, dict):
            raise bad(f'entry {name!r} is not an object')
        dtype, shape, offsets = entry.get('dtype'), entry.get('shape'), entry.get('data_offsets')
        if dtype not in SAFETENSORS_ITEM_SIZES:
            raise bad(f'tensor {name!r} has dtype {dtype!r}')
        if (not isinstance(shape, list) or len(shape) > 16
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            raise bad(f'tensor {name!r} has shape {shape!r}')
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= data_size):
            raise bad(f'tensor {name!r} has byte range {offsets!r} outside the {data_size} data bytes')
        numel = 1
        for d in shape:
            numel *= d
        if numel * SAFETENSORS_ITEM_SIZES[dtype] != offsets[1] - offsets[0]:
            raise bad(f'tensor {name!r} of shape {shape} and dtype {dtype} does not fill its byte range {offsets}')
        out[name] = (dtype, tuple(shape))
    return out


def load_safetensors(path: str) -> Dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file, its header checked first (:func:`read_safetensors_header`).

    Raises:
        CorruptCheckpointError: The file is damaged; names the file.
    """
    read_safetensors_header(path)
    from safetensors.torch import load_file
    try:
        return load_file(path)
    except Exception as err:  # noqa: BLE001  (SafetensorError and friends do not name the file)
        raise CorruptCheckpointError(f'cannot read {path}: {type(err).__name__}: {err}') from err


def save_state_dict(state: Dict[str, torch.Tensor], path: str, meta: Optional[dict] = None) -> None:
    """Write weights for others to read: ``.safetensors`` (tensors + string metadata) or a weights-only ``.pth``.

    ``.safetensors`` files store ``meta`` as JSON under the ``ivnext_meta`` metadata key; ``.pth`` files hold
    ``{'state_dict': state, 'meta': meta}`` with plain values only, so both load without trusting the file.
    """
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


def format_fit_report(path: str, report: Dict[str, List[str]], opt_in: Optional[str], limit: int = 20) -> str:
    """A message naming the keys of ``path`` that do not fit, and the partial-load opt-in (None: there is none)."""
    parts = []
    for kind in ('mismatched', 'missing', 'unexpected'):
        keys = report[kind]
        if keys:
            shown = ', '.join(keys[:limit]) + (f', ... ({len(keys) - limit} more)' if len(keys) > limit else '')
            parts.append(f'{len(keys)} {kind}: {shown}')
    fix = f', or load what fits with {opt_in}' if opt_in else ''
    return (f'checkpoint {path} does not fit the model; ' + '; '.join(parts)
            + f'. Check the config / checkpoint pair{fix}.')


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


# What each policy of :func:`load_weights` refuses (the rest is loaded, and reported in the log).
WEIGHT_POLICIES: Dict[str, Tuple[str, ...]] = {
    'strict': ('missing', 'unexpected', 'mismatched'),  # the checkpoint is exactly the module
    'complete': ('missing', 'mismatched'),  # every tensor of the module; the file may hold more (a head, a teacher)
    'lenient': ('mismatched',),  # a wrong size stops; missing and unexpected keys are logged (``pretrained=``)
    'partial': (),  # load what fits, warn naming the rest
}


def position_tables_resized(module: nn.Module, state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``state`` with each submodule's ``pos_embed`` resized to that submodule's grid.

    A submodule that owns a position table it can resample has ``adapt_pos_embed(table) -> table`` (the encoder,
    the predictors: e.g. a 16-frame Stage-1 table for a 32-frame Stage-2 model); tables already of the right shape
    stay as they are.
    """
    out = dict(state)
    for name, sub in module.named_modules():
        key = f'{name}.pos_embed' if name else 'pos_embed'
        current = getattr(sub, 'pos_embed', None)
        if (key in out and hasattr(sub, 'adapt_pos_embed') and isinstance(current, torch.Tensor)
                and tuple(out[key].shape) != tuple(current.shape)):
            out[key] = sub.adapt_pos_embed(out[key])
    return out


def load_weights(module: nn.Module, source: Union[str, Dict[str, torch.Tensor]], policy: str = 'strict', *,
                 prefixes: Iterable[str] = KNOWN_PREFIXES, trusted: bool = False, opt_in: str = DEFAULT_OPT_IN,
                 partial_opt_in: Optional[str] = None, name: Optional[str] = None,
                 logger: Optional[logging.Logger] = None) -> Dict[str, List[str]]:
    """Load weights into ``module``: the one loader of encoder (and model) weights in ivnext.

    Steps: read ``source`` (:func:`read_state_dict`: safetensors, or a torch file loaded weights-only, MMEngine's
    checkpoint types allowed; in full only with ``trusted``, refused otherwise naming ``opt_in``), remove wrapper
    ``prefixes`` where the stripped key is one the module has (:func:`strip_prefixes`), resize position tables
    (:func:`position_tables_resized`), then load every tensor that fits and apply ``policy``
    (:data:`WEIGHT_POLICIES`):

    * ``'strict'``: the checkpoint is exactly the module: any missing, unexpected or differently shaped key stops;
    * ``'complete'``: every tensor of the module is present with its shape; keys the module lacks are ignored
      (a recognizer's head, a Stage-1 run's predictor; the public API and feature extraction);
    * ``'lenient'``: a differently shaped key stops; missing and unexpected keys are logged (``pretrained=``);
    * ``'partial'``: what fits is loaded and the rest named in a warning (``--partial-load`` and the like).

    Refusals raise before anything is loaded when a shape differs, otherwise after the fitting keys are loaded.
    Load-time hooks of the module apply (an encoder built without a projector ignores ``clip_projector.*``;
    pretrainers keep their unsaved teachers).

    Args:
        module: The module (an encoder, a model, or an ``nn.ModuleDict`` of parts).
        source: Checkpoint path (file or folder, see :func:`read_state_dict`) or a state dict already read.
        policy: A key of :data:`WEIGHT_POLICIES`.
        prefixes: Wrapper prefixes to remove (``()`` for keys that already match).
        trusted: Unpickle a torch file in full (files of your own origin only).
        opt_in: How the caller's user allows unpickling, named when a file is refused (e.g. ``--trust-checkpoint``).
        partial_opt_in: How the caller's user loads what fits, named when a key stops the load (None: no such
            option).
        name: What to call ``source`` in messages (default: the path, or 'state dict').
        logger: Logger (MMEngine's current one by default; the public API passes its own quiet one).

    Returns:
        dict: ``missing``, ``unexpected`` and ``mismatched`` (``'key: checkpoint (..) vs model (..)'``) key lists.

    Raises:
        ValueError: ``policy`` is not one of :data:`WEIGHT_POLICIES`.
        CheckpointMismatchError: A key that ``policy`` refuses; names the keys and ``partial_opt_in``.
        UntrustedCheckpointError, CorruptCheckpointError, FileNotFoundError: From reading the file.
    """
    if policy not in WEIGHT_POLICIES:
        raise ValueError(f'policy must be one of {sorted(WEIGHT_POLICIES)}, got {policy!r}')
    logger = logger or MMLogger.get_current_instance()
    name = name or (source if isinstance(source, str) else 'state dict')
    refused = WEIGHT_POLICIES[policy]
    expected = module.state_dict()
    state = read_state_dict(source, trusted, opt_in) if isinstance(source, str) else dict(source)
    state = position_tables_resized(module, strip_prefixes(state, expected.keys(), prefixes))
    shapes = fit_report(expected, state)['mismatched']
    if 'mismatched' in refused and shapes:
        raise CheckpointMismatchError(format_fit_report(name, dict(missing=[], unexpected=[], mismatched=shapes),
                                                        partial_opt_in))
    fitting = {k: v for k, v in state.items() if k not in expected or tuple(v.shape) == tuple(expected[k].shape)}
    result = module.load_state_dict(fitting, strict=False)
    skipped = {entry.split(':', 1)[0] for entry in shapes}
    report = dict(missing=[k for k in result.missing_keys if k not in skipped],
                  unexpected=list(result.unexpected_keys), mismatched=shapes)
    stops = {kind: (report[kind] if kind in refused else []) for kind in report}
    if any(stops.values()):
        raise CheckpointMismatchError(format_fit_report(name, stops, partial_opt_in))
    if policy == 'complete' and report['unexpected']:
        logger.debug(f'ignored {len(report["unexpected"])} keys of {name} that the module lacks')
    elif any(report.values()):
        logger.warning(f'{policy} load: ' + format_fit_report(name, report, None))
    logger.info(f'loaded weights from {name} ({len(fitting) - len(report["unexpected"])} tensors)')
    return report


def load_encoder_checkpoint(model: nn.Module, path: str, strict: bool = False, logger: Optional[MMLogger] = None,
                            trusted: bool = False, opt_in: str = DEFAULT_OPT_IN) -> Tuple[List[str], List[str]]:
    """Encoder weights from any checkpoint: :func:`load_weights` with the ``'strict'`` or ``'lenient'`` policy.

    Returns:
        tuple: (missing keys, unexpected keys).
    """
    report = load_weights(model, path, 'strict' if strict else 'lenient', trusted=trusted, opt_in=opt_in,
                          logger=logger)
    return report['missing'], report['unexpected']

"""Workarounds for the pinned third-party stack, in one place.

Two kinds. The **import-time fixes** (:func:`apply_all`, run by ``import ivnext``) must be in place before anything
imports mmaction2, timm or transformers; each acts only where its problem exists and is inert elsewhere. The
**fixes applied where needed** are called by the ivnext module that needs them, on its own objects, and change
nothing at import. Each entry says what upstream behaviour it answers, why it cannot change what correct code
does, and when it can go.

Import-time fixes:

* **torchvision CUDA wheel on CPU torch** (:func:`guard_torchvision_import`). The only torchvision for torch 2.13
  is a CUDA build whose C extension does not load on the CPU build of torch; its ``_meta_registrations`` then
  fails with ``operator torchvision::nms does not exist``. timm and transformers import torchvision, so the whole
  stack fails. When (and only when) that exact error happens, the two operator schemas are declared (schema only,
  no kernel) and torchvision is imported again. *Safe:* a torchvision that imports cleanly is never touched, and
  an absent one is left absent; only schemas are declared, so a call to ``nms`` still fails as it did.
  *Remove when* a torchvision built for the installed torch (CPU or CUDA alike) is pinned.
* **mmaction2 1.2.0 wheel without its DRN localizer** (:func:`patch_mmaction_missing_drn`). The wheel lacks
  ``mmaction/models/localizers/drn`` while ``mmaction.models.localizers`` imports it, so ``import mmaction.models``
  fails. When that package is missing, a module is installed in its place whose ``DRN`` raises a clear error if
  anyone builds it. *Safe:* it only exists where the real module is absent, and fails loudly when used.
  *Remove when* the pinned mmaction2 wheel ships ``localizers/drn`` (or mmaction2 is installed from source).
* **mmaction2's multimodal models without timm** (:func:`patch_mmaction_multimodal_without_timm`). mmaction2
  imports its VindLU models whenever ``transformers`` is installed (``WITH_MULTIMODAL``), but they also import
  ``timm``, which mmaction2 does not declare; so ``import mmaction.models`` (and ``import ivnext``) fails with
  ``No module named 'timm'`` in a clean install. Where timm is missing, ``WITH_MULTIMODAL`` is set False before
  ``mmaction.models`` is imported: mmaction2 then registers its own placeholders for the three VindLU models,
  which raise an ImportError naming the install when built. *Safe:* only where the import would have failed;
  with timm installed nothing changes. *Remove when* mmaction2 declares timm or checks for it.
* **mmaction2's vendored BERT on transformers 4.5x** (:func:`patch_transformers_reexports`). ``mmaction.models``
  (its VindLU model) imports ``apply_chunking_to_forward``, ``find_pruneable_heads_and_indices`` and
  ``prune_linear_layer`` from ``transformers.modeling_utils``; newer transformers keep them only in
  ``transformers.pytorch_utils``. They are re-exported when absent. *Safe:* the same functions under their former
  names; present names are kept. *Remove when* mmaction2 imports them from ``transformers.pytorch_utils``.
* **CPU/gloo distributed training** (:func:`patch_mmengine_cpu_distributed`). MMEngine's PyTorch launcher calls
  ``torch.cuda.set_device`` and its DDP wrapper passes ``device_ids``; both fail without CUDA. On machines without
  CUDA the launcher skips ``set_device`` (and ``nccl`` becomes ``gloo``), the DDP wrapper drops ``device_ids`` and
  the FSDP wrapper gets ``device_id='cpu'``. With CUDA nothing is patched. *Safe:* ``nccl`` cannot run without
  CUDA, so only runs that would have failed take the gloo path. *Remove when* MMEngine's launcher and wrappers
  support CPU-only machines.
* **DeepSpeed imported on first use** (:func:`defer_deepspeed_import`). MMEngine imports ``deepspeed`` whenever it
  is installed (seconds per process, sporadic aborts of gloo jobs at exit). A stand-in module answers name/spec
  probes and imports the real package on the first other access. *Safe:* every use of DeepSpeed reaches the real
  module; only the moment of import changes. *Remove when* MMEngine imports DeepSpeed only inside its DeepSpeed
  strategy.
* **MMEngine package configs without pkg_resources** (:func:`patch_mmengine_package_configs`). MMEngine 0.10
  resolves ``_base_ = 'mmaction::...'`` through ``pkg_resources``, which setuptools >= 81 no longer ships. Only
  when ``pkg_resources`` is missing are its two lookups replaced by ``importlib`` equivalents; ``ivnext`` is added
  to MMEngine's package table either way (so ``'ivnext::...'`` configs resolve). *Safe:* the same paths, found
  another way. *Remove when* the pinned MMEngine stops importing ``pkg_resources``.
* **Names numpy removed, for mmaction2's modules only** (:func:`patch_mmaction_numpy_aliases`). mmaction2 1.2.0
  calls ``np.trapz`` (``evaluation.functional.accuracy``) and ``np.in1d`` (``evaluation.metrics.multimodal_metric``),
  which numpy 2.4 removed, and ``np.Inf`` (``datasets.transforms.pose_transforms``, ``utils.misc``), which numpy 2.0
  removed. Where a name is missing, those modules (and only those) get a view of numpy that adds it
  (``trapezoid``, ``isin(...).ravel()``, ``inf``); numpy itself is not changed. *Safe:* the replacements are
  numpy's own functions with the removed names' results; other modules and numpy's attributes are untouched.
  *Remove when* mmaction2 uses the current names.
* **DeepSpeed optimizers without the 1-bit ones** (:func:`patch_deepspeed_optimizer_registration`). MMEngine's
  ``DeepSpeedStrategy`` registers DeepSpeed's optimizers with ``register_deepspeed_optimizers``, which imports
  ``deepspeed.runtime.fp16.onebit``; DeepSpeed 0.19.7 removed that module, so building the strategy fails.
  MMEngine's function is called first; only when it fails on that missing module are the optimizers that still
  exist registered (``DeepSpeedCPUAdam``, ``FusedAdam``, ``FusedLamb``). MMEngine's function also fails when a
  second ``DeepSpeedStrategy`` is built in one process (its optimizers are registered already): then the
  registered names are returned. *Safe:* with DeepSpeed < 0.19.7 the first registration is MMEngine's own;
  DeepSpeed is not imported before a strategy needs it. *Remove when* MMEngine imports
  the 1-bit optimizers only where they exist.
* **Import warnings that do not concern ivnext** (:data:`IMPORT_WARNINGS`, filtered by ``ivnext/__init__.py``
  only while ivnext imports). mmcv-lite warns that its CUDA deformable attention is missing (ivnext and the
  mmaction2 models it uses never call it), and timm >= 0.9 warns that mmaction2 imports ``timm.models.layers``.
  *Safe:* ``warnings.catch_warnings`` restores the user's filters after the import; the same warnings raised by
  the user's own code later are shown as before. *Remove when* mmaction2 / mmcv stop raising them.
* **No checkpoint loader is replaced.** MMEngine's loader keeps torch's ``weights_only=True`` default; ivnext's
  own training checkpoints load weights-only through ``ivnext.utils.checkpoint.checkpoint_load_scope`` (an
  allow-list active only inside ivnext's load calls), and a full unpickle needs an explicit per-call opt-in.

Fixes applied where needed (nothing at import):

* **Non-blocking batch copies** (:func:`enable_non_blocking_copies`, called by the pretraining algorithms on their
  own data preprocessor). MMEngine's ``BaseDataPreprocessor(non_blocking=True)`` copies batches to the GPU without
  blocking the host, but mmaction2 1.2.0's ``ActionDataPreprocessor.__init__`` neither takes nor forwards that
  argument, so the config cannot set it. The MMEngine attribute the argument would have set is set instead.
  *Safe:* the copy runs on the current stream, which orders it before every kernel that reads the batch; from
  unpinned memory it is synchronous as before. *Remove when* ``ActionDataPreprocessor`` accepts ``non_blocking``
  (then set it in the configs' ``data_preprocessor``).
* **ModernBERT attention functions** (:func:`use_modernbert_attention`, called by ``ModernBertPredictor`` for its
  banded local attention, and to pin SDPA). transformers 4.57's ModernBERT picks its attention function from the
  module-level ``MODERNBERT_ATTENTION_FUNCTION`` table by ``config._attn_implementation``; it does not go through
  the public ``AttentionInterface`` registry, and the config's public ``attn_implementation`` only accepts
  transformers' own names. The function is added to that table under an ``ivnext_`` name (never replacing an
  entry) and the config of the predictor's own layers names it. transformers 5 dispatches through
  ``AttentionInterface``: there the function is registered under the same kind of name. *Safe:* only configs
  that name the new entry use it; transformers' entries are untouched. *Remove the 4.x branch when* the pinned
  transformers is 5.x.
"""
import importlib
import importlib.util
import os.path as osp
import sys
import types
from typing import Any, Callable, Iterable, Optional, Set, Tuple

import torch

_APPLIED = False

# (category, message regex) of third-party warnings raised while ivnext imports mmaction2 that concern no use of it.
IMPORT_WARNINGS = (
    (UserWarning, r'Fail to import ``MultiScaleDeformableAttention``'),  # mmcv-lite: no CUDA ops
    (FutureWarning, r'Importing from timm\.models\.layers is deprecated'),  # mmaction2's VindLU on timm >= 0.9
)


def guard_torchvision_import() -> bool:
    """Import torchvision (when installed), declaring missing ``nms``/``qnms`` schemas if needed.

    Returns:
        bool: True if the guard had to declare the schemas.
    """
    if 'torchvision' in sys.modules or importlib.util.find_spec('torchvision') is None:
        return False
    try:
        import torchvision  # noqa: F401
        return False
    except RuntimeError as err:
        if 'torchvision::nms does not exist' not in str(err):
            raise
    for name in [m for m in sys.modules if m == 'torchvision' or m.startswith('torchvision.')]:
        del sys.modules[name]
    lib = torch.library.Library('torchvision', 'DEF')  # noqa: TOR901
    lib.define('nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    lib.define('qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    # Keep the library object alive: its destructor would drop the schemas.
    guard_torchvision_import._library = lib
    import torchvision  # noqa: F401,F811
    return True


def patch_mmengine_cpu_distributed() -> None:
    """Let MMEngine's ``pytorch`` launcher and DDP wrapper run on CPU with gloo."""
    if torch.cuda.is_available():
        return
    import mmengine.dist.utils as dist_utils
    from mmengine.model.wrappers import MMDistributedDataParallel

    if not getattr(dist_utils._init_dist_pytorch, '_ivnext_cpu', False):
        def _init_dist_pytorch_cpu(backend: str = 'gloo', init_backend: str = 'torch', **kwargs) -> None:
            if backend == 'nccl':
                backend = 'gloo'
            rank = int(dist_utils.os.environ['RANK'])
            world_size = int(dist_utils.os.environ['WORLD_SIZE'])
            dist_utils.torch_dist.init_process_group(
                backend=backend, rank=rank, world_size=world_size, **kwargs)

        _init_dist_pytorch_cpu._ivnext_cpu = True
        dist_utils._init_dist_pytorch = _init_dist_pytorch_cpu

    if not getattr(MMDistributedDataParallel.__init__, '_ivnext_cpu', False):
        original_init = MMDistributedDataParallel.__init__

        def _init_without_device_ids(self, module, detect_anomalous_params: bool = False, **kwargs) -> None:
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
            original_init(self, module, detect_anomalous_params=detect_anomalous_params, **kwargs)

        _init_without_device_ids._ivnext_cpu = True
        MMDistributedDataParallel.__init__ = _init_without_device_ids

    # FSDPStrategy passes ``device_id=LOCAL_RANK`` (a CUDA index); FSDP shards on CPU with device_id='cpu'.
    from mmengine.model.wrappers import MMFullyShardedDataParallel
    if not getattr(MMFullyShardedDataParallel.__init__, '_ivnext_cpu', False):
        original_fsdp_init = MMFullyShardedDataParallel.__init__

        def _init_on_cpu(self, module, *args, **kwargs) -> None:
            if isinstance(kwargs.get('device_id'), int):
                kwargs['device_id'] = torch.device('cpu')
            original_fsdp_init(self, module, *args, **kwargs)

        _init_on_cpu._ivnext_cpu = True
        MMFullyShardedDataParallel.__init__ = _init_on_cpu


class _MissingDRN:
    """Placeholder registered for the localizer the mmaction2 1.2.0 wheel omits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ImportError('mmaction2 1.2.0 wheels ship without mmaction/models/localizers/drn; '
                          'install mmaction2 from source to use the DRN localizer.')


def patch_mmaction_missing_drn() -> None:
    """Provide ``mmaction.models.localizers.drn`` when the installed wheel lacks it."""
    if 'mmaction.models.localizers.drn.drn' in sys.modules:
        return
    spec = importlib.util.find_spec('mmaction')
    if spec is None or spec.submodule_search_locations is None:
        return
    root = list(spec.submodule_search_locations)[0]
    if osp.isdir(osp.join(root, 'models', 'localizers', 'drn')):
        return
    package = types.ModuleType('mmaction.models.localizers.drn')
    package.__path__ = []
    module = types.ModuleType('mmaction.models.localizers.drn.drn')
    module.DRN = _MissingDRN
    package.drn = module
    sys.modules[package.__name__] = package
    sys.modules[module.__name__] = module


def find_pruneable_heads_and_indices(heads: Iterable[int], n_heads: int, head_size: int,
                                     already_pruned_heads: Set[int]) -> Tuple[Set[int], torch.Tensor]:
    """Heads still to prune and the kept rows of an attention projection (transformers 4.x semantics).

    transformers 5 removed this helper, which mmaction2 1.2.0's vendored BERT imports (and calls only when a
    user prunes heads). Same contract as transformers 4.57's ``pytorch_utils.find_pruneable_heads_and_indices``.

    Args:
        heads: Indices of the heads to prune, in the unpruned numbering.
        n_heads: Heads the layer has now.
        head_size: Channels per head.
        already_pruned_heads: Heads pruned before, in the unpruned numbering.

    Returns:
        tuple: The heads to prune (set) and the indices (LongTensor, ``n_heads * head_size - pruned``) of the
        projection rows to keep.
    """
    heads = set(heads) - set(already_pruned_heads)
    # A head's current position: its unpruned index less the pruned heads before it.
    shifted = [head - sum(1 for done in already_pruned_heads if done < head) for head in heads]
    keep = torch.ones(n_heads, dtype=torch.bool)
    keep[shifted] = False
    index = torch.arange(n_heads * head_size).view(n_heads, head_size)[keep].flatten().long()
    return heads, index


def patch_mmaction_multimodal_without_timm() -> bool:
    """Let ``mmaction.models`` import without timm by using mmaction2's own multimodal placeholders.

    Returns:
        bool: True if mmaction2's ``WITH_MULTIMODAL`` was switched off (timm missing, mmaction.models not imported).
    """
    if importlib.util.find_spec('timm') is not None or importlib.util.find_spec('mmaction') is None:
        return False
    if 'mmaction.models' in sys.modules:
        return False
    dependency = importlib.import_module('mmaction.utils.dependency')
    if not getattr(dependency, 'WITH_MULTIMODAL', False):
        return False
    dependency.WITH_MULTIMODAL = False
    return True


def patch_transformers_reexports() -> None:
    """Give ``transformers.modeling_utils`` the helpers mmaction2's vendored BERT imports from it.

    transformers >= 4.5x keep ``apply_chunking_to_forward``, ``find_pruneable_heads_and_indices`` and
    ``prune_linear_layer`` only in ``transformers.pytorch_utils``; transformers 5 removed
    ``find_pruneable_heads_and_indices`` altogether, and it is then defined here
    (:func:`find_pruneable_heads_and_indices`). Names already present are kept.
    """
    if importlib.util.find_spec('transformers') is None:
        return
    import transformers.modeling_utils as modeling_utils
    import transformers.pytorch_utils as pytorch_utils
    fallbacks = dict(find_pruneable_heads_and_indices=find_pruneable_heads_and_indices)
    for name in ('apply_chunking_to_forward', 'find_pruneable_heads_and_indices', 'prune_linear_layer'):
        if hasattr(modeling_utils, name):
            continue
        function = getattr(pytorch_utils, name, fallbacks.get(name))
        if function is not None:
            setattr(modeling_utils, name, function)


class _DeferredModule(types.ModuleType):
    """Stands in for a package until something other than its name, spec or file is looked up on it."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith('__') and attr not in ('__path__', '__version__'):
            raise AttributeError(attr)
        real = self.__dict__.get('_deferred_real')
        if real is None:
            del sys.modules[self.__name__]
            real = importlib.import_module(self.__name__)
            self.__dict__['_deferred_real'] = real
        return getattr(real, attr)


def defer_deepspeed_import() -> None:
    """Import DeepSpeed only when a DeepSpeed strategy uses it.

    MMEngine imports ``deepspeed`` as soon as it is installed (``mmengine._strategy``). That costs over a second
    per process and pulls in torch._dynamo, and gloo jobs that never use DeepSpeed then sometimes abort at exit
    after finishing. A stand-in module answers name and spec lookups (package probes) and imports the real
    package on the first other attribute or submodule access.
    """
    if 'deepspeed' in sys.modules:
        return
    spec = importlib.util.find_spec('deepspeed')
    if spec is None:
        return
    module = _DeferredModule('deepspeed')
    module.__spec__ = spec
    module.__file__ = spec.origin  # inspect.getmodule probes every module's __file__
    sys.modules['deepspeed'] = module


# mmaction2 modules that use names numpy removed, and the names they use.
MMACTION_NUMPY_NAMES = {
    'mmaction.evaluation.functional.accuracy': ('trapz', ),
    'mmaction.evaluation.metrics.multimodal_metric': ('in1d', ),
    'mmaction.datasets.transforms.pose_transforms': ('Inf', ),
    'mmaction.utils.misc': ('Inf', ),
}


def _in1d(ar1: Any, ar2: Any, assume_unique: bool = False, invert: bool = False) -> Any:
    """numpy's removed ``in1d``: ``isin`` flattened to 1-D."""
    import numpy as np
    return np.isin(ar1, ar2, assume_unique=assume_unique, invert=invert).ravel()


class _NumpyWithRemovedNames(types.ModuleType):
    """numpy as seen by one third-party module: numpy's attributes plus replacements of removed names."""

    def __init__(self, numpy_module: types.ModuleType, names: dict) -> None:
        super().__init__(numpy_module.__name__, numpy_module.__doc__)
        self.__dict__.update(names)
        self.__dict__['_numpy'] = numpy_module

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__['_numpy'], name)


def patch_mmaction_numpy_aliases() -> list:
    """Give mmaction2's modules the numpy names they use that the installed numpy removed.

    Returns:
        list: The modules whose ``np`` was replaced (empty when numpy has every name).
    """
    import numpy as np
    replacements = dict(trapz=getattr(np, 'trapezoid', None), in1d=_in1d, Inf=np.inf)
    patched = []
    for module_name, names in MMACTION_NUMPY_NAMES.items():
        missing = {n: replacements[n] for n in names if not hasattr(np, n) and replacements[n] is not None}
        if not missing or importlib.util.find_spec('mmaction') is None:
            continue
        module = importlib.import_module(module_name)
        current = getattr(module, 'np', None)
        if isinstance(current, _NumpyWithRemovedNames):
            continue
        if current is not np:
            continue  # not numpy under that name: leave the module alone
        module.np = _NumpyWithRemovedNames(np, missing)
        patched.append(module_name)
    return patched


def patch_deepspeed_optimizer_registration() -> bool:
    """Let MMEngine's DeepSpeed strategy register DeepSpeed's optimizers when the 1-bit ones are gone.

    Returns:
        bool: True if MMEngine's registration function is now wrapped (done once; DeepSpeed is not imported).
    """
    if importlib.util.find_spec('deepspeed') is None:
        return False
    try:
        from mmengine._strategy import deepspeed as strategy_module
    except ImportError:
        return False
    original = strategy_module.register_deepspeed_optimizers
    if not getattr(original, '_ivnext_wrapped', False):
        strategy_module.register_deepspeed_optimizers = registration_without_one_bit(original)
    return True


# The optimizers MMEngine's register_deepspeed_optimizers registers (the last three need deepspeed < 0.19.7).
DEEPSPEED_OPTIMIZERS = ('DeepSpeedCPUAdam', 'FusedAdam', 'FusedLamb', 'OnebitAdam', 'OnebitLamb', 'ZeroOneAdam')


def registration_without_one_bit(original: Callable[[], list]) -> Callable[[], list]:
    """Wrap MMEngine's ``register_deepspeed_optimizers``: where ``deepspeed.runtime.fp16.onebit`` is missing
    (DeepSpeed >= 0.19.7), register the optimizers that remain instead of failing.

    Returns:
        Callable: Returns the registered optimizer names, as MMEngine's function does.
    """

    def register_deepspeed_optimizers() -> list:
        from mmengine.registry import OPTIMIZERS
        if 'DeepSpeedCPUAdam' in OPTIMIZERS.module_dict:  # a second DeepSpeedStrategy in this process
            return [name for name in DEEPSPEED_OPTIMIZERS if name in OPTIMIZERS.module_dict]
        try:
            return original()
        except ModuleNotFoundError as err:
            if err.name != 'deepspeed.runtime.fp16.onebit':
                raise
        from deepspeed.ops.adam import DeepSpeedCPUAdam, FusedAdam
        from deepspeed.ops.lamb import FusedLamb
        names = []
        for optimizer in (DeepSpeedCPUAdam, FusedAdam, FusedLamb):
            if optimizer.__name__ not in OPTIMIZERS:
                OPTIMIZERS.register_module(module=optimizer)
            names.append(optimizer.__name__)
        return names

    register_deepspeed_optimizers._ivnext_wrapped = True
    register_deepspeed_optimizers.__wrapped__ = original
    return register_deepspeed_optimizers


def apply_all() -> None:
    """Apply every fix once; safe to call repeatedly."""
    global _APPLIED
    if _APPLIED:
        return
    defer_deepspeed_import()
    guard_torchvision_import()
    patch_mmaction_missing_drn()
    patch_mmaction_multimodal_without_timm()
    patch_transformers_reexports()
    patch_mmaction_numpy_aliases()
    patch_deepspeed_optimizer_registration()
    patch_mmengine_cpu_distributed()
    _APPLIED = True


# --------------------------------------------------------------------------------------------------------------
# Fixes applied where needed, by the module that needs them (see the module docstring).
# --------------------------------------------------------------------------------------------------------------
def enable_non_blocking_copies(preprocessor: Any) -> bool:
    """Let an MMEngine data preprocessor copy batches to the device without blocking the host.

    Sets the attribute MMEngine's ``BaseDataPreprocessor(non_blocking=...)`` sets, for preprocessors (mmaction2's
    ``ActionDataPreprocessor``) whose constructor does not take the argument.

    Returns:
        bool: True if the preprocessor is an MMEngine one and now copies without blocking.
    """
    from mmengine.model import BaseDataPreprocessor
    if not isinstance(preprocessor, BaseDataPreprocessor) or not hasattr(preprocessor, '_non_blocking'):
        return False
    preprocessor._non_blocking = True
    return True


MODERNBERT_ATTENTION_PREFIX = 'ivnext_'


def modernbert_attention_table() -> Optional[dict]:
    """transformers 4.x ModernBERT's private attention table, or None where ModernBERT uses ``AttentionInterface``.

    transformers 4.57 picks ModernBERT's attention function from the module-level ``MODERNBERT_ATTENTION_FUNCTION``
    (functions taking packed ``qkv`` and applying the rotary embedding themselves); transformers 5 dispatches
    through the public ``AttentionInterface`` registry (functions taking rotated ``query`` / ``key`` / ``value``).
    """
    from transformers.models.modernbert import modeling_modernbert
    return getattr(modeling_modernbert, 'MODERNBERT_ATTENTION_FUNCTION', None)


def use_modernbert_attention(config: Any, name: str, function: Optional[Callable] = None) -> None:
    """Make ModernBERT layers built on ``config`` attend with ``name``.

    On transformers 4.x the function goes into ModernBERT's private table (:func:`modernbert_attention_table`), on
    transformers 5 into the public ``AttentionInterface``; either way an existing entry is never replaced.

    Args:
        config: The ``ModernBertConfig`` the layers share (read at every forward).
        name: One of transformers' attention names (e.g. ``'sdpa'``) or, with ``function``, a new name starting
            with ``'ivnext_'``.
        function: An attention function with the signature the installed transformers' ModernBERT calls
            (4.x: ``sdpa_attention_forward(module, qkv, ...)``; 5: ``fn(module, query, key, value, mask, ...)``).

    Raises:
        ValueError: ``function`` under a name without the ``ivnext_`` prefix, a name taken by another function,
            or an unknown name without ``function``.
    """
    table = modernbert_attention_table()
    if table is None:
        from transformers import AttentionInterface
        table = dict(AttentionInterface._global_mapping)
        register = AttentionInterface.register
    else:
        register = table.__setitem__
    if function is not None:
        if not name.startswith(MODERNBERT_ATTENTION_PREFIX):
            raise ValueError(f'ModernBERT attention functions added by ivnext are named '
                             f'{MODERNBERT_ATTENTION_PREFIX}*, got {name!r}')
        if table.get(name, function) is not function:
            raise ValueError(f'ModernBERT attention {name!r} is already registered to another function')
        register(name, function)
    elif name not in table:
        raise ValueError(f'unknown ModernBERT attention {name!r}; known: {sorted(table)}')
    config._attn_implementation = name


# --------------------------------------------------------------------------------------------------------------
# Config inheritance from packages (`_base_ = 'mmaction::...'` / `'ivnext::...'`) without pkg_resources.
# --------------------------------------------------------------------------------------------------------------
def _installed_path(package: str) -> str:
    """Folder of an importable top-level ``package`` (pkg_resources-free ``get_installed_path``)."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        from importlib import metadata
        try:  # a distribution name that differs from its module (mmaction2 -> mmaction)
            top = (metadata.distribution(package).read_text('top_level.txt') or '').split()
        except metadata.PackageNotFoundError:
            top = []
        spec = importlib.util.find_spec(top[0]) if top else None
    if spec is None:
        raise ModuleNotFoundError(f'{package} is not installed')
    if spec.origin is None:
        raise RuntimeError(f'{package} is a namespace package; its installed path is ambiguous')
    return osp.dirname(spec.origin)


def _is_installed(package: str) -> bool:
    try:
        _installed_path(package)
        return True
    except (ModuleNotFoundError, RuntimeError):
        return False


def patch_mmengine_package_configs() -> None:
    """Let MMEngine resolve ``pkg::path`` configs without ``pkg_resources`` and know the ``ivnext`` scope.

    MMEngine 0.10 looks installed packages up with ``pkg_resources``, which setuptools >= 81 no longer ships,
    so ``_base_ = 'mmaction::...'`` fails with ``No module named 'pkg_resources'``. When (and only when)
    ``pkg_resources`` cannot be imported, MMEngine's two lookups are replaced by ``importlib`` equivalents.
    ``ivnext`` is added to MMEngine's package table so ``_base_ = 'ivnext::_base_/models/...'`` resolves to the
    configs shipped in ``ivnext/.mim/configs``.
    """
    from mmengine.config import config as config_module
    from mmengine.config import utils as config_utils
    config_utils.MODULE2PACKAGE.setdefault('ivnext', 'ivnext')
    if importlib.util.find_spec('pkg_resources') is not None:
        return
    import mmengine.utils as utils_module
    import mmengine.utils.package_utils as package_utils
    modules = [package_utils, utils_module, config_module]
    if 'mmengine.hub.hub' in sys.modules:
        modules.append(sys.modules['mmengine.hub.hub'])
    for module in modules:
        module.get_installed_path = _installed_path
        if hasattr(module, 'is_installed'):
            module.is_installed = _is_installed

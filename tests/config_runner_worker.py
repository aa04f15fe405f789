"""Worker for tests/test_config_inheritance.py: every shipped config, inherited through ``ivnext::``, builds its runner.

It runs in a fresh interpreter that imported ivnext only, as ``tools/train.py`` does (the test suite's conftest
imports every mmaction2 module, which would hide a registry that misses mmaction2's lazily imported modules).

- ``python tests/config_runner_worker.py registries OUT`` imports the locations of every ``ivnext`` scope
  registry, then those of their ancestors, and writes the names the ancestors' imports added that a child did not
  already find (there should be none) as JSON ``{registry: [names]}``.
- ``python tests/config_runner_worker.py configs OUT WORK [RELPATH ...]``, for each config under ``configs/`` (or
  each RELPATH): writes a child config ``_base_ = 'ivnext::<relpath>'`` into WORK (a partial base, e.g. a
  dataset or a schedule, also gets the shipped bases for what it lacks), reads it and applies ``tools/train.py``'s
  options with ``ivnext.cli.train``, shrinks the model to a small one with random weights (no local
  weight file is read), builds the runner, then builds what the runner builds on first use and needs no data
  (evaluators, the optimizer wrapper) and looks every dataset, transform, sampler, loop and scheduler type up in
  the registries of the config's scope. Writes JSON ``{relpath: "" or the traceback}``.
"""
import copy
import json
import sys
import traceback
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import ivnext  # noqa: F401  (first, as tools/train.py)
from mmengine.config import Config
from mmengine.registry import Registry
from mmengine.registry import root as mmengine_root

from ivnext.cli.train import build_runner, merge_args, parse_args

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / 'configs'

# The shipped bases that complete a partial base into a runnable config.
TINY_MODEL = 'ivnext::_base_/models/ivnext_vit_tiny.py'
RUNTIME = 'ivnext::_base_/default_runtime.py'
PROBE_SCHEDULE = 'ivnext::_base_/schedules/probe_adamw-cosine_20e.py'  # with validation and test loops
PRETRAIN_SCHEDULE = 'ivnext::_base_/schedules/pretrain_stage1_adamw-cosine_30e.py'  # training only
LABELLED_DATA = 'ivnext::_base_/datasets/k400.py'  # train, val and test dataloaders
PRETRAIN_DATA = 'ivnext::_base_/datasets/k710_pretrain.py'  # a train dataloader only
# A model base without a model type (the shared encoder of the probes): a recognizer around it.
RECOGNIZER = "model = dict(type='Recognizer3D', cls_head=dict(type='I3DHead', num_classes=4, in_channels=768))\n"

WIDTH = 32  # every encoder, projector, predictor and teacher width of the shrunk models
PATCH = 14
FRAMES, SIZE = 4, 56  # a 4 x 4 x 4 token grid at patch 14
_HF_TINY = dict(hidden_size=WIDTH, intermediate_size=2 * WIDTH, num_hidden_layers=2, num_attention_heads=2)
_TEACHER = dict(pretrained=None, dtype='float32', num_return_layers=2, return_interval=1.0)
# Fields set on every sub-config of the model with that type. A new model type with a width field needs an entry.
SHRINK: Dict[str, Dict[str, Any]] = {
    'InternVideoNextViT': dict(arch=dict(embed_dims=WIDTH, num_layers=2, num_heads=2, mlp_ratio=2.0),
                               img_size=SIZE, num_frames=FRAMES, clip_embed_dims=WIDTH, clip_num_heads=2,
                               use_flash_attn=False),
    'SigLIP2Teacher': dict(_TEACHER, model_config=dict(_HF_TINY, patch_size=16, num_patches=256)),
    'CLIPTeacher': dict(_TEACHER, model_config=dict(_HF_TINY, patch_size=PATCH, image_size=SIZE,
                                                    projection_dim=WIDTH)),
    'DINOv2Teacher': dict(_TEACHER, model_config=dict(_HF_TINY, patch_size=PATCH, image_size=SIZE)),
    'ModernBertPredictor': dict(in_dims=WIDTH, num_layers=1, pretrained=None,
                                model_config=dict(_HF_TINY, num_hidden_layers=1)),
    'TransformerPredictor': dict(in_dims=WIDTH, embed_dims=WIDTH, depth=1, num_heads=2, use_flash_attn=False),
    'ConditionalDiffusionHead': dict(in_dims=WIDTH, width=3 * PATCH * PATCH, depth=1),  # width >= the patch values
    'LinearPixelHead': dict(in_dims=WIDTH),
    'LatentRegressionHead': dict(in_dims=WIDTH, target_dims=WIDTH),
    'AlignmentHead': dict(in_dims=WIDTH, target_dims=WIDTH, num_layers=2),
    'PooledAlignmentHead': dict(in_dims=WIDTH, target_dims=WIDTH),
    'AttentiveProbeHead': dict(in_channels=WIDTH, num_heads=2),
    'LinearProbeHead': dict(in_channels=WIDTH),
    'I3DHead': dict(in_channels=WIDTH),
}


def shipped_configs() -> List[str]:
    """Every config under configs/, relative to it (READMEs are not configs)."""
    return sorted(str(p.relative_to(CONFIGS)) for p in CONFIGS.rglob('*.py'))


def child_config(relpath: str) -> str:
    """The text of a config inheriting ``relpath`` through ``ivnext::``, completed when the base is partial."""
    base = Config.fromfile(str(CONFIGS / relpath))
    bases = [f'ivnext::{relpath}']
    body = ''
    if 'model' not in base:
        bases.append(TINY_MODEL)
    elif 'type' not in base.model:
        body = RECOGNIZER
    elif 'cls_head' in base.model and 'num_classes' not in base.model.cls_head:
        # A head base leaves the dataset's classes (of the head and of the batch blending) to its config.
        classes = dict(cls_head=dict(num_classes=4))
        if base.model.get('data_preprocessor', {}).get('blending'):
            classes['data_preprocessor'] = dict(blending=dict(num_classes=4))
        body = f'model = {classes!r}\n'
    if 'default_hooks' not in base:
        bases.append(RUNTIME)
    if 'train_dataloader' in base and 'train_cfg' not in base:
        bases.append(PROBE_SCHEDULE if 'val_dataloader' in base else PRETRAIN_SCHEDULE)
    if 'train_cfg' in base and 'train_dataloader' not in base:
        bases.append(LABELLED_DATA if base.get('val_cfg') else PRETRAIN_DATA)
    if len(bases) == 1 and not body:
        return f'_base_ = {bases[0]!r}\n'
    return f'_base_ = {bases!r}\n{body}'


def sub_configs(node: Any) -> Iterator[dict]:
    """Every dict inside ``node`` (itself included), depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from sub_configs(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from sub_configs(value)


def shrink_model(model: dict) -> None:
    """Set the :data:`SHRINK` fields on every sub-config of ``model`` of a listed type, in place."""
    for sub in list(sub_configs(model)):
        fields = SHRINK.get(sub.get('type')) if isinstance(sub.get('type'), str) else None
        if fields:
            for key, value in copy.deepcopy(fields).items():
                sub[key] = value


def look_up(root: Registry, cfg: Optional[dict], key: str = 'type') -> None:
    """Find ``cfg[key]`` in the registry of ``root``'s tree for the scope ``cfg`` is built in.

    Raises:
        KeyError: The name is not registered there.
    """
    if not isinstance(cfg, dict) or not isinstance(cfg.get(key), str):
        return
    with root.switch_scope_and_registry(cfg.get('_scope_')) as registry:
        if registry.get(cfg[key]) is None:
            raise KeyError(f'{cfg[key]} is not in the {registry.scope}::{registry.name} registry')


def look_up_dataset(dataset: Optional[dict]) -> None:
    """A dataset config: its type (and wrapped type), its pipeline and the datasets it wraps or concatenates."""
    if not isinstance(dataset, dict):
        return
    look_up(mmengine_root.DATASETS, dataset)
    look_up(mmengine_root.DATASETS, dataset, 'wraps')
    for transform in dataset.get('pipeline') or []:
        look_up(mmengine_root.TRANSFORMS, transform)
    for inner in dataset.get('datasets') or []:
        look_up_dataset(inner)
    look_up_dataset(dataset.get('dataset'))


def check_lazy_parts(runner: Any, cfg: Config) -> None:
    """Build or look up what the runner builds on first use: evaluators, optimizer wrapper, data, loops, schedulers."""
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if isinstance(loader, dict):
            look_up(mmengine_root.DATA_SAMPLERS, loader.get('sampler'))
            look_up_dataset(loader.get('dataset'))
        look_up(mmengine_root.LOOPS, cfg.get(f'{split}_cfg'))
        if split != 'train' and cfg.get(f'{split}_evaluator') is not None:
            runner.build_evaluator(cfg.get(f'{split}_evaluator'))
    schedulers = cfg.get('param_scheduler') or []
    for scheduler in schedulers if isinstance(schedulers, (list, tuple)) else [schedulers]:
        look_up(mmengine_root.PARAM_SCHEDULERS, scheduler)
    optim_wrapper = cfg.get('optim_wrapper')
    if isinstance(optim_wrapper, dict):
        if 'runner_type' in cfg:  # FlexibleRunner builds the model and the wrapper in its strategy
            look_up(mmengine_root.OPTIM_WRAPPERS, optim_wrapper)
            look_up(mmengine_root.OPTIM_WRAPPER_CONSTRUCTORS, optim_wrapper, 'constructor')
            look_up(mmengine_root.OPTIMIZERS, optim_wrapper.get('optimizer'))
        else:
            runner.build_optim_wrapper(copy.deepcopy(optim_wrapper))


def shrink_aligner(model: dict, work: Path) -> None:
    """A video-text aligner gets a tiny saved encoder and a tiny BERT-style text tower (random weights, in ``work``)
    in place of the released encoder and MobileCLIP / MiniLM, whose weights are not read here."""
    from helpers_text import save_tiny_bert, save_tiny_encoder
    encoder, tower = work / 'tiny_aligner_encoder', work / 'tiny_aligner_text'
    if not encoder.exists():
        save_tiny_encoder(encoder)
        save_tiny_bert(tower)
    model['encoder'] = dict(source=str(encoder))
    model['text_tower'] = dict(type='TransformersTextTower', pretrained=str(tower))
    model['align_dim'] = None


def build_one(relpath: str, work: Path) -> None:
    """Build the runner of the ``ivnext::`` child of ``relpath`` and its lazily built parts."""
    name = relpath[:-len('.py')].replace('/', '__').replace('-', '_')
    path = work / f'{name}.py'
    path.write_text(child_config(relpath))
    args = parse_args([str(path), '--work-dir', str(work / name)])
    cfg = merge_args(Config.fromfile(str(path)), args)
    shrink_model(cfg.model)
    if cfg.model.get('type') == 'VideoTextAligner':
        shrink_aligner(cfg.model, work)
    runner = build_runner(cfg)
    try:
        check_lazy_parts(runner, cfg)
    finally:
        for handler in list(runner.logger.handlers):  # the runner's log file
            if hasattr(handler, 'baseFilename'):
                handler.close()
                runner.logger.removeHandler(handler)


def visible(registry: Registry) -> set:
    """Names ``registry.get`` finds without a scope prefix: its own and its ancestors'."""
    names = set()
    while registry is not None:
        names |= set(registry.module_dict)
        registry = registry.parent
    return names


def registry_gaps() -> Dict[str, List[str]]:
    """Names that importing the ancestors' locations adds to what each ``ivnext`` child already finds."""
    from ivnext import registry as scope_registries
    children = {name: getattr(scope_registries, name) for name in scope_registries.__all__}
    for child in children.values():
        child.import_from_location()
    found = {name: visible(child) for name, child in children.items()}
    for child in children.values():
        parent = child.parent
        while parent is not None:
            try:
                parent.import_from_location()
            except ModuleNotFoundError:  # mmaction2 1.2.0 lists a module it does not ship for its functions
                pass
            parent = parent.parent
    return {name: sorted(visible(child) - found[name]) for name, child in children.items()
            if visible(child) - found[name]}


def allow_second_deepspeed_strategy() -> None:
    """Let one process build several ``DeepSpeedStrategy`` objects.

    MMEngine's ``register_deepspeed_optimizers`` runs in every ``DeepSpeedStrategy.__init__`` and registers
    DeepSpeed's optimizers without ``force``, so the second strategy of a process fails with ``KeyError: ... is
    already registered``; a training process builds one.
    """
    try:
        from mmengine._strategy import deepspeed as strategy_module
    except ImportError:
        return
    register = strategy_module.register_deepspeed_optimizers

    def register_once() -> list:
        from mmengine.registry import OPTIMIZERS
        if 'DeepSpeedCPUAdam' in OPTIMIZERS:
            return [name for name in ('DeepSpeedCPUAdam', 'FusedAdam', 'FusedLamb', 'OnebitAdam', 'OnebitLamb',
                                      'ZeroOneAdam') if name in OPTIMIZERS]
        return register()

    strategy_module.register_deepspeed_optimizers = register_once


def format_each_config_once() -> None:
    """Format the text of a config once: the runner formats its config three times (the log, the dump in the work
    dir and the visualizer's copy) with yapf, which is most of the time a runner takes to build."""
    from mmengine.config import config as config_module
    format_code = config_module.FormatCode
    last: Dict[str, Any] = {}

    def format_once(text: str, **kwargs: Any) -> Any:
        if text not in last:
            last.clear()
            last[text] = format_code(text, **kwargs)
        return last[text]

    config_module.FormatCode = format_once


def main(argv: List[str]) -> None:
    """``registries OUT`` or ``configs OUT WORK [RELPATH ...]``."""
    mode, out = argv[0], Path(argv[1])
    if mode == 'registries':
        out.write_text(json.dumps(registry_gaps(), indent=1))
        return
    work, selected = Path(argv[2]), argv[3:] or shipped_configs()
    work.mkdir(parents=True, exist_ok=True)
    allow_second_deepspeed_strategy()
    format_each_config_once()
    report = {}
    for relpath in selected:
        try:
            build_one(relpath, work)
            report[relpath] = ''
        except Exception:  # noqa: BLE001  (every config is reported; the test names the failing ones)
            report[relpath] = traceback.format_exc()
    out.write_text(json.dumps(report, indent=1))


if __name__ == '__main__':
    main(sys.argv[1:])

"""One leaderboard: probe a list of encoders on a list of tasks and write one table (Markdown, CSV, JSON).

A *task* is a probe config (a ``FrozenBackboneRecognizer3D`` config: data, head, optimizer, schedule, e.g.
``configs/probe/*`` or ``configs/demo/ivnext_demo_probe.py``) plus overrides; an *encoder* is a backbone config
(``InternVideoNextViT``, ``TransformersBackbone`` for transformers video or per-frame image models, ...) with its
weights. For every encoder x task the task's backbone is replaced by the encoder, the head is fitted to the
encoder's width and prefix tokens, the frozen tokens of every split are extracted once
(:func:`~ivnext.evaluation.cached_probe.extract_tokens`, shared by the tasks that read the same clips) and the
task's head, usually a ``ProbeSweepHead``, is trained on them (:func:`~ivnext.evaluation.cached_probe.train_probe`)
and selected on val by :data:`~ivnext.evaluation.selection.SELECTION_RULE`.

Each row carries its protocol beside the numbers: frames, views, input size, the probe (head type, heads, their
settings, epochs), the selection rule, the split the number is measured on. The paper's reported numbers
(:mod:`ivnext.evaluation.paper_results`) go in their own columns (``paper``), filled only from that table and only
for encoders that name a paper model; measured columns are filled only from this run.

Spec file (YAML, JSON, or a Python file defining ``encoders`` and ``tasks``)::

    encoders:
      - name: ivnext-b                      # row key (letters, digits, - _ .)
        label: InternVideo-Next ViT-B/14    # shown in the table (default: name)
        backbone: {type: InternVideoNextViT, arch: base, out_type: tokens}
        checkpoint: checkpoints/internvideo_next_base_p14_res224_f16.safetensors   # null: random init (seeded)
        paper: internvideo-next-b-stage2    # a key of ivnext/evaluation/paper_results.py (optional)
      - name: vjepa2-l
        backbone: {type: TransformersBackbone, pretrained: checkpoints/vjepa2-vitl-fpc64-256}
        paper: vjepa2-l
    tasks:
      - name: k400
        config: configs/probe/attnprobe-sweep_ivnext-vit-b-p14_16x224_20e_k400.py
        paper_task: K400                    # the paper's column name (optional)
        cfg_options: {train_dataloader.batch_size: 32}   # merged into the config (dotted keys allowed)

Paths are read relative to the current directory. A held-out test split is the config's ``test_dataloader`` when
its annotation list differs from the val one; the table then reports test top-1 of the setting chosen on val.
"""
import csv
import hashlib
import json
import os
import os.path as osp
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

import ivnext  # noqa: F401  (compat fixes and registration, before mmengine and mmaction2)
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from .cached_probe import extract_tokens, labels_for, train_probe
from .paper_results import PAPER_RESULTS, PROTOCOL as PAPER_PROTOCOL, SOURCE as PAPER_SOURCE, paper_top1
from .selection import SELECTION_RULE

NAME = re.compile(r'^[A-Za-z0-9_.-]+$')
SPLITS = ('train', 'val', 'test')
CSV_COLUMNS = ('encoder', 'task', 'measured_val_top1', 'measured_val_top1_std', 'measured_test_top1',
               'measured_test_top1_std', 'measured_train_top1', 'reported_split', 'frames', 'size', 'views', 'probe',
               'selection', 'paper_reported_top1', 'paper_model', 'paper_source', 'paper_protocol')


@dataclass
class EncoderSpec:
    """One encoder of the leaderboard.

    Attributes:
        name: Row key (letters, digits, ``-``, ``_``, ``.``).
        backbone: The ``model.backbone`` config that replaces the task's.
        label: Shown in the table (default: ``name``).
        checkpoint: Encoder weights read with the extraction's loader, or None (random init seeded with ``seed``,
            or the backbone's own ``pretrained=`` weights).
        data_preprocessor: ``model.data_preprocessor`` overrides (mean / std). A backbone that declares its own
            ``mean`` / ``std`` (``TransformersBackbone``) sets them when this is None.
        paper: Key of :data:`~ivnext.evaluation.paper_results.PAPER_RESULTS`, or None.
        seed: Seed of a random initialisation.
    """

    name: str
    backbone: Dict
    label: str = ''
    checkpoint: Optional[str] = None
    data_preprocessor: Optional[Dict] = None
    paper: Optional[str] = None
    seed: int = 0

    def __post_init__(self):
        _check_name('encoders', self.name)
        if not isinstance(self.backbone, dict) or 'type' not in self.backbone:
            raise ValueError(f"encoder {self.name!r}: backbone must be a config dict with a 'type', e.g. "
                             "{type: TransformersBackbone, pretrained: DIR}")
        if self.paper is not None and self.paper not in PAPER_RESULTS:
            raise KeyError(f'encoder {self.name!r}: paper={self.paper!r} is not a paper model; choose from '
                           f'{sorted(PAPER_RESULTS)} or leave it out')
        self.label = self.label or self.name


@dataclass
class TaskSpec:
    """One task: a probe config and its overrides.

    Attributes:
        name: Column / row key.
        config: Path of the probe config.
        label: Shown in the table (default: ``name``).
        paper_task: The paper's name of the task (``K400``, ``SSv2``, ``COIN``) for the paper column, or None.
        cfg_options: Merged into the config (``Config.merge_from_dict``: nested dicts or dotted keys).
    """

    name: str
    config: str
    label: str = ''
    paper_task: Optional[str] = None
    cfg_options: Dict = field(default_factory=dict)

    def __post_init__(self):
        _check_name('tasks', self.name)
        if not osp.isfile(self.config):
            raise FileNotFoundError(f'task {self.name!r}: config {self.config} does not exist (paths are read '
                                    f'relative to {os.getcwd()})')
        self.label = self.label or self.name


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(f'{kind}[].name must be letters, digits, - _ . (it names result files), got {name!r}')


def load_spec(path: str) -> Tuple[List[EncoderSpec], List[TaskSpec]]:
    """Encoders and tasks of a spec file (``.yaml`` / ``.yml``, ``.json``, or ``.py`` defining them).

    Raises:
        ValueError: The file lacks ``encoders`` or ``tasks``, or an entry has unknown fields (named).
    """
    ext = osp.splitext(path)[1].lower()
    if ext in ('.yaml', '.yml'):
        import yaml
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    elif ext == '.json':
        with open(path) as f:
            data = json.load(f)
    elif ext == '.py':
        data = Config.fromfile(path).to_dict()
    else:
        raise ValueError(f'{path}: a leaderboard spec is .yaml, .yml, .json or .py, got {ext!r}')
    out = []
    for key, cls in (('encoders', EncoderSpec), ('tasks', TaskSpec)):
        entries = data.get(key)
        if not entries:
            raise ValueError(f'{path}: `{key}` is missing or empty; list at least one (see '
                             'ivnext/evaluation/leaderboard.py for the format)')
        fields = set(cls.__dataclass_fields__)
        specs = []
        for i, entry in enumerate(entries):
            unknown = set(entry) - fields
            if unknown:
                raise ValueError(f'{path}: {key}[{i}] has unknown fields {sorted(unknown)}; allowed: {sorted(fields)}')
            specs.append(cls(**entry))
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f'{path}: {key} names must be unique, got {names}')
        out.append(specs)
    return out[0], out[1]


def digest(*parts) -> str:
    """Short SHA-256 of JSON-serialisable parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_identity(path: Optional[str]) -> Optional[list]:
    if path is None:
        return None
    st = os.stat(path)
    return [osp.abspath(path), st.st_size, st.st_mtime_ns]


# ------------------------------------------------------------------------------------------------ protocol
def _pipeline_facts(pipeline: Sequence[Dict]) -> Dict:
    """Frames per view, clips, crops and crop size of a test-style pipeline."""
    facts = dict(frames=None, clips=1, crops=1, size=None)
    for t in pipeline:
        kind = t.get('type')
        if kind in ('SampleFrames', 'UniformSample', 'UniformSampleFrames'):
            facts['frames'] = int(t.get('clip_len'))
            facts['clips'] = int(t.get('num_clips', 1))
        elif kind in ('ThreeCrop', 'TenCrop', 'CenterCrop'):
            facts['crops'] = dict(ThreeCrop=3, TenCrop=10).get(kind, 1)
            size = t.get('crop_size')
            facts['size'] = int(size if isinstance(size, int) else size[0])
    return facts


def _probe_text(cfg: Config) -> str:
    head = cfg.model.cls_head
    epochs = int(cfg.train_cfg.max_epochs)
    batch = int(cfg.train_dataloader.batch_size)
    if head.type != 'ProbeSweepHead':
        opt = cfg.optim_wrapper.optimizer
        return f'1 x {head.type} (lr {opt.lr:g}, wd {opt.get("weight_decay", 0):g}), {epochs} ep x {batch}'
    from ivnext.models.heads.probe_sweep_head import expand_grid
    settings = expand_grid(head.grid) if head.get('grid') is not None else list(head.settings)
    lrs = sorted({s.get('lr', cfg.optim_wrapper.optimizer.lr) for s in settings})
    wds = sorted({s.get('weight_decay', cfg.optim_wrapper.optimizer.get('weight_decay', 0)) for s in settings})
    inits = len(settings) // max(1, len({tuple(sorted(s.items())) for s in settings}))
    text = (f'{len(settings)} x {head.head["type"]} (lr {", ".join(f"{v:g}" for v in lrs)}; '
            f'wd {", ".join(f"{v:g}" for v in wds)}')
    return text + (f'; {inits} inits each' if inits > 1 else '') + f'), {epochs} ep x {batch}'


def _held_out_test(cfg: Config) -> bool:
    test, val = cfg.get('test_dataloader'), cfg.get('val_dataloader')
    return bool(test) and test.dataset.get('ann_file') != val.dataset.get('ann_file')


# ------------------------------------------------------------------------------------------------ one cell
def task_config(encoder: EncoderSpec, task: TaskSpec) -> Tuple[Config, int]:
    """The task's config with the encoder as its backbone and the head fitted to it: ``in_channels`` = the encoder's
    width, ``num_cls_tokens`` = its prefix tokens (a linear probe's ``with_prefix`` is dropped when it has none), and
    a frame-wise pool (``time_slots`` > 1) gets its token frames.

    Returns:
        tuple: the config, and the encoder's prefix-token count P (``num_cls_tokens`` of the head).
    """
    cfg = Config.fromfile(task.config)
    if task.cfg_options:
        cfg.merge_from_dict(dict(task.cfg_options))
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    backbone_cfg = dict(encoder.backbone, out_type='tokens')
    torch.manual_seed(encoder.seed)
    built = MODELS.build(dict(backbone_cfg))
    width = int(getattr(built, 'out_channels', None) or built.embed_dims)
    prefix = int(built.num_cls_tokens)
    cfg.model.backbone = backbone_cfg
    pre = dict(encoder.data_preprocessor or {})
    if not pre and hasattr(built, 'mean') and hasattr(built, 'std'):
        pre = dict(mean=list(built.mean), std=list(built.std))
    cfg.model.data_preprocessor.update(pre)
    head = cfg.model.cls_head
    head.in_channels = width
    single = head.head if head.type == 'ProbeSweepHead' else head
    single.num_cls_tokens = prefix
    if prefix == 0 and single.get('with_prefix'):  # a linear probe's prefix mean: nothing to average
        single.with_prefix = False
    if int(single.get('time_slots', 1)) > 1:  # frame-wise pooling: one slot per token frame of this encoder
        single.time_slots = _token_frames(built, _pipeline_facts(cfg.val_dataloader.dataset.pipeline))
    del built
    return cfg, prefix


def _token_frames(backbone: torch.nn.Module, facts: Dict) -> int:
    """Token frames T' of the encoder on the pipeline's clips."""
    if hasattr(backbone, 'grid_of'):
        size = facts['size'] or 224
        return int(backbone.grid_of(torch.zeros(1, 3, facts['frames'], size, size))[0])
    return int(backbone.grid_size[0])


def _clip_list(cfg: Config, split: str) -> List[str]:
    with open(cfg[f'{split}_dataloader'].dataset.ann_file) as f:
        return [line.split()[0] for line in f if line.strip()]


def evaluate(encoder: EncoderSpec, task: TaskSpec, feature_cache: Optional[Dict] = None,
             log: Callable[[str], None] = print, cfg: Optional[Config] = None) -> Dict:
    """Probe one encoder on one task (extract frozen tokens once per split, train the task's head on them).

    Args:
        encoder: The encoder.
        task: The task.
        feature_cache: Tokens already extracted in this run, keyed by encoder, pipeline and clip list (shared by
            tasks that read the same clips with other labels); filled here.
        log: Progress messages.
        cfg: :func:`task_config` of the pair when already built.

    Returns:
        dict: One leaderboard row: ``encoder``, ``task`` (names and labels), ``measured`` (this run), ``protocol``,
        ``paper`` (reported, or None) and ``seconds``.
    """
    tic = time.perf_counter()
    feature_cache = {} if feature_cache is None else feature_cache
    cfg = task_config(encoder, task)[0] if cfg is None else cfg
    splits = ('train', 'val', 'test') if _held_out_test(cfg) else ('train', 'val')
    data_root = {s: cfg[f'{s}_dataloader'].dataset.data_prefix['video'] for s in splits}
    feats, labels = {}, {}
    for split in splits:
        loader = cfg[f'{split}_dataloader']
        key = digest(encoder.name, cfg.model.backbone, _file_identity(encoder.checkpoint), encoder.seed,
                     loader.dataset.pipeline, data_root[split], _clip_list(cfg, split), cfg.model.data_preprocessor)
        if key not in feature_cache:
            log(f'{encoder.name}: extracting frozen tokens of the {split} clips')
            feature_cache[key] = extract_tokens(cfg, encoder.checkpoint, split, seed=encoder.seed)
        feats[split] = feature_cache[key]
        labels[split] = labels_for(feats[split]['filenames'], data_root[split], loader.dataset.ann_file)
    num_classes = int(cfg.model.cls_head.num_classes)
    test = dict(test_x=feats['test']['tokens'], test_y=labels['test']) if 'test' in splits else {}
    result = train_probe(cfg, num_classes, feats['train']['tokens'], labels['train'], feats['val']['tokens'],
                         labels['val'], seed=encoder.seed, train_tokens=cfg.get('probe_train_tokens'), **test)
    facts = _pipeline_facts(cfg[f'{splits[-1]}_dataloader'].dataset.pipeline)
    sweep = cfg.model.cls_head.type == 'ProbeSweepHead'
    if len(result.get('selected', ())) < 2:  # no init replicas of the selected setting: no spread to report
        result['top1_std'] = result['test_top1_std'] = None
    measured = dict(val_top1=result['top1'], val_top1_std=result.get('top1_std'),
                    test_top1=result.get('test_top1'), test_top1_std=result.get('test_top1_std'),
                    train_top1=result['train_top1'], reported_split=splits[-1],
                    clips={s: len(labels[s]) for s in splits}, num_classes=num_classes)
    if sweep:
        measured['heads'] = [dict(s, val_top1=v, train_top1=t) for s, v, t in
                             zip(result['settings'], result['head_top1'], result['head_train_top1'])]
        measured['selected_heads'] = result['selected']
    protocol = dict(frames=facts['frames'], size=facts['size'], views=f'{facts["clips"]} clip x {facts["crops"]} crop',
                    probe=_probe_text(cfg), selection=SELECTION_RULE if sweep else 'single head, last epoch',
                    features='frozen encoder, tokens extracted once per split (no augmentation)',
                    config=task.config)
    paper = None
    if encoder.paper is not None and task.paper_task is not None:
        value = paper_top1(encoder.paper, task.paper_task)
        if value is not None:
            paper = dict(top1=value, model=PAPER_RESULTS[encoder.paper]['model'], source=PAPER_SOURCE,
                         protocol=PAPER_PROTOCOL)
    row = dict(encoder=encoder.name, encoder_label=encoder.label, task=task.name, task_label=task.label,
               measured=measured, protocol=protocol, paper=paper, seconds=round(time.perf_counter() - tic, 1))
    log(f'{encoder.name} / {task.name}: val top-1 {100 * measured["val_top1"]:.1f}%'
        + (f', test {100 * measured["test_top1"]:.1f}%' if measured['test_top1'] is not None else '')
        + f' (train {100 * measured["train_top1"]:.1f}%)')
    return row


def run_leaderboard(encoders: Sequence[EncoderSpec], tasks: Sequence[TaskSpec], work_dir: str,
                    log: Callable[[str], None] = print) -> List[Dict]:
    """Probe every encoder on every task; reuse a row from ``work_dir/results/`` made from the same inputs.

    Args:
        encoders: The encoders.
        tasks: The tasks.
        work_dir: Folder of the per-row results (``results/<encoder>__<task>.json``).
        log: Progress messages.

    Returns:
        list: Rows (see :func:`evaluate`) in encoder-major order, each with ``reused``.
    """
    os.makedirs(osp.join(work_dir, 'results'), exist_ok=True)
    cache: Dict = {}
    rows = []
    for encoder in encoders:
        for task in tasks:
            cfg, _ = task_config(encoder, task)
            key = digest(asdict(encoder), _file_identity(encoder.checkpoint), cfg.pretty_text,
                         {s: _clip_list(cfg, s) for s in SPLITS if cfg.get(f'{s}_dataloader')})
            path = osp.join(work_dir, 'results', f'{encoder.name}__{task.name}.json')
            if osp.isfile(path):
                with open(path) as f:
                    old = json.load(f)
                if old.get('key') == key:
                    log(f'{encoder.name} / {task.name}: result exists (same encoder and task); reusing it.')
                    rows.append(dict(old['row'], reused=True))
                    continue
            row = evaluate(encoder, task, cache, log, cfg=cfg)
            tmp = path + '.tmp'
            with open(tmp, 'w') as f:
                json.dump(dict(key=key, row=row), f, indent=1)
            os.replace(tmp, path)
            rows.append(dict(row, reused=False))
    return rows


# ------------------------------------------------------------------------------------------------ rendering
def _pct(value: Optional[float], std: Optional[float] = None) -> str:
    if value is None:
        return ''
    return f'{100 * value:.1f}' + (f' ± {100 * std:.1f}' if std is not None else '')  # ± 0.0: replicas agreed


def render_markdown(rows: Sequence[Dict]) -> str:
    """The leaderboard as a Markdown table: measured columns, protocol columns, then the paper's reported column.

    Returns:
        str: The table and a line stating the selection rule and the paper column's source.
    """
    lines = ['| encoder | task | measured val top-1 (%) | measured test top-1 (%) | probe train top-1 (%) | frames '
             '| views | probe | paper, reported top-1 (%) |', '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        m, p, paper = r['measured'], r['protocol'], r['paper']
        frames = f'{p["frames"]} x {p["size"]} px' if p['size'] else str(p['frames'])
        reported = f'{paper["top1"]:.1f} ({paper["model"]})' if paper else ''
        lines.append(f'| {r["encoder_label"]} | {r["task_label"]} | {_pct(m["val_top1"], m["val_top1_std"])} | '
                     f'{_pct(m["test_top1"], m["test_top1_std"])} | {_pct(m["train_top1"])} | {frames} | '
                     f'{p["views"]} | {p["probe"]} |'
                     f' {reported} |')
    rules = sorted({r['protocol']['selection'] for r in rows})
    lines += ['', 'Selection: ' + '; '.join(rules) + '. Measured numbers are this run\'s; ± is the std over the '
              'selected setting\'s heads (init replicas).']
    if any(r['paper'] for r in rows):
        lines.append(f'Paper column: reported, not measured ({PAPER_SOURCE}; {PAPER_PROTOCOL}).')
    return '\n'.join(lines) + '\n'


def render_pivot(rows: Sequence[Dict], extra_rows: Sequence[Sequence[str]] = ()) -> str:
    """Encoders x tasks as a Markdown matrix of the measured top-1 on each row's reported split (held-out test when
    there is one), ± the std over the selected setting's heads, with the probe's train top-1 per task; the paper
    column is not part of it.

    Args:
        rows: Leaderboard rows.
        extra_rows: Further rows of cells (label, one cell per task, then the train cell), e.g. chance.

    Returns:
        str: The Markdown table.
    """
    tasks = list(dict.fromkeys((r['task'], r['task_label']) for r in rows))
    encoders = list(dict.fromkeys((r['encoder'], r['encoder_label']) for r in rows))
    cell = {(r['encoder'], r['task']): r for r in rows}
    splits = sorted({r['measured']['reported_split'] for r in rows})
    lines = ['| encoder | ' + ' | '.join(f'{label}: {"/".join(splits)} top-1 (%)' for _, label in tasks)
             + f' | probe train top-1 (%) ({" / ".join(name for name, _ in tasks)}) |',
             '|---' * (len(tasks) + 2) + '|']
    for name, label in encoders:
        cells, train = [], []
        for task, _ in tasks:
            r = cell.get((name, task))
            if r is None:
                cells.append('')
                train.append('-')
                continue
            m = r['measured']
            value, std = ((m['test_top1'], m['test_top1_std']) if m['reported_split'] == 'test'
                          else (m['val_top1'], m['val_top1_std']))
            cells.append(_pct(value, std))
            train.append(_pct(m['train_top1']))
        lines.append(f'| {label} | ' + ' | '.join(cells) + f' | {" / ".join(train)} |')
    for extra in extra_rows:
        lines.append('| ' + ' | '.join(extra) + ' |')
    return '\n'.join(lines) + '\n'


def csv_rows(rows: Sequence[Dict]) -> List[Dict]:
    """Flat rows with :data:`CSV_COLUMNS` (measured_* from this run, paper_* from the paper's table)."""
    out = []
    for r in rows:
        m, p, paper = r['measured'], r['protocol'], r['paper'] or {}
        out.append(dict(encoder=r['encoder'], task=r['task'], measured_val_top1=m['val_top1'],
                        measured_val_top1_std=m['val_top1_std'], measured_test_top1=m['test_top1'],
                        measured_test_top1_std=m['test_top1_std'], measured_train_top1=m['train_top1'],
                        reported_split=m['reported_split'], frames=p['frames'], size=p['size'], views=p['views'],
                        probe=p['probe'], selection=p['selection'], paper_reported_top1=paper.get('top1'),
                        paper_model=paper.get('model'), paper_source=paper.get('source'),
                        paper_protocol=paper.get('protocol')))
    return out


def write_tables(rows: Sequence[Dict], out_prefix: str) -> List[str]:
    """Write ``<out_prefix>.md``, ``.csv`` and ``.json``. Returns the paths."""
    os.makedirs(osp.dirname(osp.abspath(out_prefix)), exist_ok=True)
    paths = [out_prefix + ext for ext in ('.md', '.csv', '.json')]
    with open(paths[0], 'w') as f:
        f.write(render_markdown(rows))
    with open(paths[1], 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(csv_rows(rows))
    with open(paths[2], 'w') as f:
        json.dump(dict(rows=list(rows), paper_source=PAPER_SOURCE, selection=SELECTION_RULE), f, indent=1)
    return paths


__all__ = ('CSV_COLUMNS', 'EncoderSpec', 'TaskSpec', 'csv_rows', 'evaluate', 'load_spec', 'render_markdown',
           'render_pivot', 'run_leaderboard', 'task_config', 'write_tables')

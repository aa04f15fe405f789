"""The configs/align/ configs run end to end through tools/train.py and tools/test.py on CPU with tiny towers."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers_text import TINY_ALIGN_CONFIG as TINY
from helpers_text import TRAIN_ONE_EPOCH as TRAIN_ONLY
from helpers_text import TINY_ENCODER, save_tiny_bert, save_tiny_encoder
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[1]
ALIGN = REPO / 'configs' / 'align'
COLOURS = ('red', 'green', 'blue', 'yellow')  # helpers_video.CLASS_STYLES: colour and direction per label
MOTIONS = ('moving right', 'moving down', 'moving left', 'moving up')

def run_tool(args, cwd: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f'{args}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}'
    return result.stdout + result.stderr


@pytest.fixture(scope='module')
def towers(tmp_path_factory):
    root = tmp_path_factory.mktemp('towers')
    return dict(encoder=save_tiny_encoder(root / 'encoder'), bert=save_tiny_bert(root / 'bert'))


def caption_files(clips, root: Path):
    """VideoTextDataset annotations of the test clips: two captions per train video, one per test video."""
    def captions(label):
        return [f'a {COLOURS[label]} square {MOTIONS[label]}', f'the {COLOURS[label]} shape is {MOTIONS[label]}']

    train, test = {}, {}
    for ann, out in ((clips.train_ann_file, train), (clips.val_ann_file, test)):
        for line in ann.read_text().split('\n'):
            if line.strip():
                name, label = line.split()
                out[name] = captions(int(label)) if out is train else captions(int(label))[:1]
    (root / 'train.json').write_text(json.dumps(train))
    (root / 'test.json').write_text(json.dumps(test))
    return root / 'train.json', root / 'test.json'


@pytest.mark.parametrize('data', ['msrvtt', 'didemo', 'anet-captions'])
def test_every_retrieval_config_builds_the_recipe(data):
    for tower, text_type in (('mobileclip-b', 'OpenCLIPTextTower'), ('minilm', 'TransformersTextTower')):
        cfg = Config.fromfile(str(ALIGN / f'vtalign_ivnext-vit-b-p14-{tower}_16x224_3e_{data}.py'))
        assert cfg.model.type == 'VideoTextAligner' and cfg.model.text_tower.type == text_type
        assert cfg.model.temperature == cfg.model.min_temperature == 0.01 and cfg.model.loss.gather
        assert cfg.train_dataloader.dataset.type == 'SkipBadClips'
        assert cfg.train_dataloader.dataset.wraps == 'VideoTextDataset'
        assert cfg.test_evaluator == dict(type='SkipBadClipsMetric', metric=dict(type='VideoTextRetrievalMetric'))
        assert cfg.optim_wrapper.optimizer.lr == 4e-4 and cfg.optim_wrapper.optimizer.weight_decay == 0.2
        assert cfg.custom_imports.imports == ['ivnext']
        assert cfg.custom_hooks == [dict(type='SaveAlignerHook', folder='aligner')]


def test_align_train_then_test_retrieval_and_zero_shot(towers, video_clips, tmp_path):
    train_json, test_json = caption_files(video_clips, tmp_path)
    base = ALIGN / 'vtalign_ivnext-vit-b-p14-minilm_16x224_3e_msrvtt.py'
    pack = "dict(type='PackActionInputs', meta_keys=('filename', 'text'))"
    config = tmp_path / 'tiny_align.py'
    config.write_text(TINY.format(base=str(base), encoder=str(towers['encoder']), tower=str(towers['bert']),
                                  pack=pack, train=str(train_json), test=str(test_json),
                                  videos=str(video_clips.video_dir), dataset_extra='') + TRAIN_ONLY)
    work = tmp_path / 'work'
    run_tool(['tools/train.py', str(config), '--work-dir', str(work)], REPO)
    ckpt = work / 'epoch_1.pth'
    from ivnext.utils.checkpoint import load_checkpoint_file
    state = load_checkpoint_file(str(ckpt))['state_dict']  # weights-only, as every ivnext reader
    # Only the trainable parts are in the checkpoint: the frozen towers are named by the config.
    assert {k.split('.')[0] for k in state} == {'projector', 'align', 'temperature'}
    # SaveAlignerHook wrote the trained parts as a folder that ivnext.load_aligner reads.
    import ivnext
    aligner = ivnext.load_aligner(str(work / 'aligner'))
    for key, value in aligner.model.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    out = run_tool(['tools/test.py', str(config), str(ckpt), '--work-dir', str(tmp_path / 'test')], REPO)
    for key in ('retrieval/t2v/R1', 'retrieval/t2v/R5', 'retrieval/t2v/R10', 'retrieval/t2v/MdR',
                'retrieval/v2t/R1', 'retrieval/v2t/MdR'):
        assert key in out, out[-2000:]

    # Zero-shot classification of the same clips from a class-name file (UCF101's "index name" format).
    names = tmp_path / 'classInd.txt'
    names.write_text(''.join(f'{i + 1} {c.capitalize()}Square{m.title().replace(" ", "")}\n'
                             for i, (c, m) in enumerate(zip(COLOURS, MOTIONS))))
    zero_shot = tmp_path / 'tiny_zero_shot.py'
    zero_shot.write_text(TINY.format(base=str(ALIGN / 'zeroshot_ivnext-vit-b-p14-mobileclip-b_16x224_ucf101.py'),
                                     encoder=str(towers['encoder']), tower=str(towers['bert']),
                                     pack="dict(type='PackActionInputs')", train=str(video_clips.train_ann_file),
                                     test=str(video_clips.val_ann_file), videos=str(video_clips.video_dir),
                                     dataset_extra='num_classes=4')
                         + f"class_names = {str(names)!r}\nmodel['zero_shot'] = dict(class_names=class_names)\n"
                         + "train_dataloader = None\nval_dataloader = None\n")
    out = run_tool(['tools/test.py', str(zero_shot), str(ckpt), '--work-dir', str(tmp_path / 'zs')], REPO)
    assert 'acc/top1' in out and 'acc/top5' in out, out[-2000:]
    assert TINY_ENCODER['clip_embed_dims'] == 32

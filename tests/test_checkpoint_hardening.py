"""Loading and saving weights: nothing exhausts memory, every error names its file, a full disk loses nothing.

A ``save_pretrained`` folder whose ``config.json`` asks for a huge model, damaged ``.safetensors`` and torch files,
corrupt versus untrusted pickles, the opt-in named where the user is, failed saves and the leftovers of one, and
resume candidates that are not checkpoint files.
"""
import errno
import json
import os
import resource
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import ivnext
from ivnext.api.encoder import VideoEncoder
from ivnext.hooks.safe_checkpoint_hook import newest_complete_checkpoint
from ivnext.utils.checkpoint import (CorruptCheckpointError, UntrustedCheckpointError, load_checkpoint_file,
                                     read_safetensors_header)

REPO = Path(__file__).resolve().parents[1]
TINY = dict(arch=dict(embed_dims=32, num_layers=2, num_heads=2, mlp_ratio=2.0), img_size=28, patch_size=14,
            num_frames=2, tubelet_size=1, in_channels=3, num_cls_tokens=4, with_clip_projector=True,
            clip_embed_dims=16, clip_num_heads=2)


class _System:
    def __reduce__(self):
        return (os.system, ('true',))


def _huge_array():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct

    class Huge:
        def __reduce__(self):
            return (_reconstruct, (np.ndarray, (0,), b'b'), (1, (2**46,), np.dtype('uint8'), False, b'\0' * 16))

    return Huge()


@pytest.fixture
def saved(tmp_path) -> Path:
    folder = tmp_path / 'enc'
    torch.manual_seed(0)
    VideoEncoder(TINY).save_pretrained(str(folder))
    return folder


def edit_config(folder: Path, **encoder) -> None:
    path = folder / 'config.json'
    config = json.loads(path.read_text())
    config['encoder'].update(encoder)
    path.write_text(json.dumps(config))


def corrupt_pickle(tmp_path: Path) -> Path:
    """A torch zip whose members pass their CRC checks but whose pickle is garbage."""
    good = tmp_path / 'good.pth'
    torch.save({'a': torch.zeros(2)}, good)
    with zipfile.ZipFile(good) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    path = tmp_path / 'corrupt.pth'
    with zipfile.ZipFile(path, 'w') as out:
        for name, data in members.items():
            out.writestr(name, b'\x80\x02garbage!!' if name.endswith('data.pkl') else data)
    return path


# ------------------------------------------------------------------------------------------ loading
def test_a_huge_config_next_to_small_weights_is_refused_before_anything_is_built(saved):
    edit_config(saved, arch=dict(embed_dims=8192, num_layers=64, num_heads=64))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match=r'config\.json says encoder\.arch\.embed_dims=8192 but .*model\.safetensors '
                       'holds width 32'):
        ivnext.load_encoder(str(saved))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200, f'peak memory grew by {grown_mb:.0f} MB'


@pytest.mark.parametrize('field, value, message', [
    ('num_frames', 4096, 'num_frames / img_size / num_cls_tokens'),
    ('clip_embed_dims', 10**6, 'clip_embed_dims=1000000'),
    ('img_size', 'big', 'img_size must be a positive integer'),
    ('arch', dict(embed_dims=32, num_layers=10**9, num_heads=2, mlp_ratio=2.0), 'num_layers=1000000000'),
])
def test_config_fields_that_do_not_fit_the_weights_are_named(saved, field, value, message):
    edit_config(saved, **{field: value})
    with pytest.raises(ValueError, match=message):
        ivnext.load_encoder(str(saved))


def test_a_saved_folder_still_loads_exactly(saved):
    encoder = ivnext.load_encoder(str(saved))
    reference = VideoEncoder.from_pretrained(str(saved))
    assert encoder.weights_fingerprint() == reference.weights_fingerprint()


def test_damaged_safetensors_name_the_file(tmp_path, saved):
    weights = saved / 'model.safetensors'
    data = weights.read_bytes()
    weights.write_bytes(data[:len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match=f'{weights}'):
        ivnext.load_encoder(str(saved))
    loose = tmp_path / 'loose.safetensors'
    loose.write_bytes(b'\xff' * 64)
    with pytest.raises(CorruptCheckpointError, match=f'{loose} is not a valid .safetensors file'):
        ivnext.load_encoder(str(loose))


def test_an_array_too_large_to_allocate_names_the_file(tmp_path):
    path = tmp_path / 'huge.pth'
    torch.save({'a': _huge_array()}, path)
    with pytest.raises(CorruptCheckpointError, match=f'cannot read checkpoint {path}'):
        load_checkpoint_file(str(path))


def test_corrupt_and_untrusted_are_told_apart_and_keep_torchs_reason(tmp_path):
    corrupt = corrupt_pickle(tmp_path)
    with pytest.raises(CorruptCheckpointError, match='damaged or not a torch checkpoint') as info:
        load_checkpoint_file(str(corrupt))
    assert '--trust-checkpoint' not in str(info.value) and 'trusted=True' not in str(info.value)
    assert not isinstance(info.value, UntrustedCheckpointError)
    evil = tmp_path / 'evil.pth'
    torch.save({'a': _System()}, evil)
    with pytest.raises(UntrustedCheckpointError, match=r'GLOBAL posix\.system|GLOBAL nt\.system') as info:
        load_checkpoint_file(str(evil))
    assert str(evil) in str(info.value)


def test_the_opt_in_is_the_keyword_in_python_and_the_flag_on_the_command_line(tmp_path, capsys):
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'x': torch.zeros(1)}, 'extra': _System()}, evil)
    with pytest.raises(UntrustedCheckpointError) as info:
        ivnext.load_encoder(str(evil))
    assert '`trust_checkpoint=True`' in str(info.value) and 'system' in str(info.value)
    from ivnext.cli import extract_features
    code = extract_features.main([str(evil), '--videos', str(tmp_path), '--out-dir', str(tmp_path / 'out')])
    err = capsys.readouterr().err
    assert code == 1
    assert '--trust-checkpoint' in err and 'trust_checkpoint=True' not in err and 'system' in err


# ------------------------------------------------------------------------------------------ saving and resuming
def _stage1_cfg(clips, work_dir: Path, max_iters: int) -> Config:
    cfg = Config.fromfile(str(REPO / 'configs/demo/tiny_stage1_cpu.py'))
    for i, ann in enumerate((clips.train_ann_file, clips.val_ann_file)):
        cfg.train_dataloader.dataset.datasets[i].ann_file = str(ann)
        cfg.train_dataloader.dataset.datasets[i].data_prefix = dict(video=str(clips.video_dir))
    cfg.train_cfg.max_iters = max_iters
    cfg.work_dir = str(work_dir)
    cfg.custom_hooks = []
    cfg.experiment_name = f'{work_dir.name}_{max_iters}'
    return cfg


def test_a_save_that_fills_the_disk_removes_its_partial_file_and_says_so(video_clips, tmp_path, monkeypatch):
    def full_disk(self, out_dir, filename, *args, **kwargs):
        Path(out_dir, filename).write_bytes(b'x' * 1000)
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(Runner, 'save_checkpoint', full_disk)
    work = tmp_path / 'work'
    runner = Runner.from_cfg(_stage1_cfg(video_clips, work, 2))
    with pytest.raises(OSError, match=r'cannot write checkpoint .*iter_2\.pth \(No space left on device; '
                       r'[0-9.]+ GB free in .*\); the partial file was removed') as info:
        runner.train()
    assert info.value.errno == errno.ENOSPC
    assert not list(work.glob('*.partial'))


def test_a_leftover_partial_file_is_removed_before_the_runner_is_built(tmp_path, monkeypatch):
    from ivnext.cli import train
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'iter_4.pth.partial').write_bytes(b'x' * 100)
    seen = {}

    def build_runner(cfg):
        seen['left'] = sorted(p.name for p in work.iterdir())
        raise SystemExit(0)

    monkeypatch.setattr(train, 'build_runner', build_runner)
    with pytest.raises(SystemExit):
        train.main([str(REPO / 'configs/demo/tiny_stage1_cpu.py'), '--work-dir', str(work), '--resume'])
    assert seen['left'] == []


def test_resume_skips_folders_fifos_and_other_non_checkpoints(tmp_path):
    torch.save({'state_dict': {}}, tmp_path / 'iter_8.pth')
    (tmp_path / 'iter_12.pth').mkdir()
    (tmp_path / 'iter_12.pth' / 'notes.txt').write_text('not a checkpoint')
    (tmp_path / 'iter_10.pth').mkdir()  # empty folder
    if hasattr(os, 'mkfifo'):
        os.mkfifo(tmp_path / 'iter_14.pth')
    warnings = []
    assert newest_complete_checkpoint(str(tmp_path), 'iter_{}.pth', warnings.append) == str(tmp_path / 'iter_8.pth')
    text = '\n'.join(warnings)
    assert 'iter_12.pth: a folder without checkpoint files' in text and 'iter_10.pth: empty directory' in text
    if hasattr(os, 'mkfifo'):
        assert 'iter_14.pth: is a FIFO' in text


def test_deepspeed_folders_still_count_as_checkpoints(tmp_path):
    folder = tmp_path / 'iter_4.pth' / 'checkpoint'
    folder.mkdir(parents=True)
    (folder / 'mp_rank_00_model_states.pt').write_bytes(b'x')
    assert newest_complete_checkpoint(str(tmp_path), 'iter_{}.pth', print) == str(tmp_path / 'iter_4.pth')


def test_safetensors_header_reads_shapes_without_loading(saved):
    shapes = read_safetensors_header(str(saved / 'model.safetensors'))
    assert shapes['patch_embed.proj.weight'] == ('F32', (32, 3, 1, 14, 14))

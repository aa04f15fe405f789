"""The command lines behave like tools: exit code 0 on success (also through setuptools' ``sys.exit(main())``
wrapper), 1 and one line on stderr for a user error, 2 for a bad command line; ``--help`` shows every mode."""
import configparser
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_video import render_clip, write_mp4

from ivnext.api import Preprocessing, VideoEncoder
from ivnext.cli import extract_features, video_list

REPO = Path(__file__).resolve().parents[1]
TINY = dict(arch=dict(embed_dims=32, num_layers=1, num_heads=2, mlp_ratio=2.0), img_size=28, patch_size=14,
            num_frames=4, with_clip_projector=True, clip_embed_dims=16, clip_num_heads=2, use_flash_attn=False)
# What the console script setuptools writes does with an entry point ``module:func``.
WRAPPER = 'import sys; from {module} import {func}; sys.exit({func}())'


def console_scripts() -> dict:
    """``name -> (module, function)`` of setup.cfg's console scripts."""
    parser = configparser.ConfigParser()
    parser.read(REPO / 'setup.cfg')
    entries = {}
    for line in parser['options.entry_points']['console_scripts'].strip().splitlines():
        name, target = (part.strip() for part in line.split('='))
        entries[name] = tuple(target.split(':'))
    return entries


def run_script(args, cwd=REPO) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope='module')
def encoder_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp('weights') / 'tiny'
    VideoEncoder(TINY, Preprocessing(num_frames=4, fps=4.0, resize=28, crop=28)).save_pretrained(folder)
    return folder


@pytest.fixture(scope='module')
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('videos')
    for label in (0, 1):
        write_mp4(root / f'class{label}' / 'clip.mp4', render_clip(label, 20, 32, seed=label), fps=10)
    return root


def test_console_scripts_exit_zero_through_the_setuptools_wrapper(encoder_dir, videos, tmp_path):
    entries = console_scripts()
    assert {'ivnext-extract-features', 'ivnext-video-list'} <= set(entries)
    args = {'ivnext-video-list': [str(videos), '--out', str(tmp_path / 'list.txt'), '--workers', '1'],
            'ivnext-extract-features': [str(encoder_dir), '--videos', str(videos), '--out-dir',
                                        str(tmp_path / 'feats'), '--stride', '2', '--stride-unit', 'frames',
                                        '--device', 'cpu', '--no-progress']}
    for name, (module, func) in entries.items():
        result = run_script(['-c', WRAPPER.format(module=module, func=func), *args.get(name, ['--help'])])
        assert result.returncode == 0, f'{name}: {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}'
        assert 'ExtractionSummary(' not in result.stderr and "{'good'" not in result.stderr
    assert (tmp_path / 'list.txt').read_text().splitlines() == ['class0/clip.mp4', 'class1/clip.mp4']
    assert np.load(tmp_path / 'feats' / 'features' / 'class1' / 'clip.npy').shape == (3, 16)


def test_mains_return_exit_codes(encoder_dir, videos, tmp_path, capsys):
    assert video_list.main([str(videos), '--out', str(tmp_path / 'list.txt'), '--workers', '1']) == 0
    assert '2 usable videos' in capsys.readouterr().out
    assert extract_features.main([str(encoder_dir), '--videos', str(videos), '--out-dir', str(tmp_path / 'feats'),
                                  '--stride', '2', '--stride-unit', 'frames', '--device', 'cpu',
                                  '--no-progress']) == 0
    assert '2 videos extracted' in capsys.readouterr().out


def one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert 'Traceback' not in err and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_user_errors_exit_one_with_a_message_bad_command_lines_two(encoder_dir, videos, tmp_path, capsys):
    nowhere = str(tmp_path / 'nowhere')
    assert video_list.main([nowhere, '--out', str(tmp_path / 'list.txt')]) == 1
    one_line_error(capsys, 'error:', 'nowhere does not exist')
    assert extract_features.main([str(encoder_dir), '--videos', nowhere, '--out-dir', str(tmp_path / 'f')]) == 1
    one_line_error(capsys, 'nowhere is neither a folder of videos nor a list file')
    assert extract_features.main([nowhere, '--videos', str(videos), '--out-dir', str(tmp_path / 'f')]) == 1
    one_line_error(capsys, "'" + nowhere + "' is not a preset")
    assert extract_features.main([nowhere + '.py', 'none', '--out', str(tmp_path / 'f.npy')]) == 1
    one_line_error(capsys, 'config', 'nowhere.py does not exist')
    # Listed videos of which none can be read: a failed run, though each bad file alone is only reported.
    broken = tmp_path / 'broken'
    broken.mkdir()
    (broken / 'a.mp4').write_bytes(b'not a video')
    assert extract_features.main([str(encoder_dir), '--videos', str(broken), '--out-dir', str(tmp_path / 'g'),
                                  '--device', 'cpu', '--no-progress']) == 1
    one_line_error(capsys, 'none of the 1 videos could be read')
    assert video_list.main([str(broken), '--out', str(tmp_path / 'bad.txt'), '--workers', '1']) == 1
    one_line_error(capsys, 'none of the 1 videos is usable')
    for main, argv in ((video_list.main, ['--bogus']), (extract_features.main, ['cfg.py']),
                       (extract_features.main, ['src', '--videos', 'v', '--out-dir', 'o', '--output', 'bad'])):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2


def test_help_lists_both_modes(capsys):
    result = run_script(['tools/extract_features.py', '--help'])
    assert result.returncode == 0, result.stderr[-3000:]
    for mode_help in (result.stdout, None):
        if mode_help is None:  # the help of a --videos command line is the same full help
            with pytest.raises(SystemExit) as info:
                extract_features.main(['src', '--videos', 'v', '--help'])
            assert info.value.code == 0
            mode_help = capsys.readouterr().out
        for text in ('SOURCE --videos VIDEOS --out-dir OUT_DIR', 'CONFIG CHECKPOINT --out OUT', '--stride-unit',
                     '--include-tail', '--no-resume', '--split', '--average-views', '--cfg-options',
                     'windows over videos', "a config's dataset"):
            assert text in mode_help, text


LAUNCHERS = {'dist_train.sh': ['cfg.py', '2'], 'dist_test.sh': ['cfg.py', 'ckpt.pth', '2'],
             'slurm_train.sh': ['partition', 'job', 'cfg.py'], 'slurm_test.sh': ['partition', 'job', 'cfg.py', 'ckpt']}


def stub(path: Path, name: str) -> Path:
    """An executable that appends ``name`` and its arguments to ``calls.txt`` next to the test's files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/usr/bin/env bash\necho "{name} $*" >> "$CALLS"\n')
    path.chmod(0o755)
    return path


def test_launch_scripts_use_the_repository_venv(tmp_path):
    repo = tmp_path / 'repo'
    (repo / 'tools').mkdir(parents=True)
    for name in [*LAUNCHERS, 'select_python.sh']:
        (repo / 'tools' / name).write_bytes((REPO / 'tools' / name).read_bytes())
    bin_dir = tmp_path / 'bin'
    stub(bin_dir / 'python', 'path-python')
    stub(bin_dir / 'python3', 'path-python')
    # srun runs its command (the first absolute path among its arguments) here.
    (bin_dir / 'srun').write_text('#!/usr/bin/env bash\nfor a; do shift; [[ $a == /* ]] && exec "$a" "$@"; done\n')
    (bin_dir / 'srun').chmod(0o755)
    calls = tmp_path / 'calls.txt'
    base_env = {k: v for k, v in os.environ.items() if k not in ('PYTHON', 'VIRTUAL_ENV', 'IVNEXT_VENV')}
    base_env.update(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", CALLS=str(calls))

    def interpreter(script: str, **env) -> str:
        calls.write_text('')
        result = subprocess.run(['bash', str(repo / 'tools' / script), *LAUNCHERS[script]],
                                env=dict(base_env, **env), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return calls.read_text().split()[0]

    # No venv anywhere: python on PATH, as before.
    assert interpreter('dist_train.sh') == 'path-python'
    # An active virtual environment comes before PATH...
    stub(tmp_path / 'active' / 'bin' / 'python', 'active-venv')
    assert interpreter('dist_train.sh', VIRTUAL_ENV=str(tmp_path / 'active')) == 'active-venv'
    # ...and the repository's .venv before both; PYTHON= overrides everything.
    stub(repo / '.venv' / 'bin' / 'python', 'repo-venv')
    stub(tmp_path / 'chosen', 'chosen-python')
    for script in LAUNCHERS:
        assert interpreter(script, VIRTUAL_ENV=str(tmp_path / 'active')) == 'repo-venv', script
        assert interpreter(script, PYTHON=str(tmp_path / 'chosen')) == 'chosen-python', script

"""Generated inputs (hypothesis) end in a correct load or an error naming the file: never a hang, a crash or an
unbounded allocation.

Targets: the video-list readers (recognition, K-Mash and ``--videos`` lists), the ``config.json`` of a saved
encoder, and ``.safetensors`` headers. Each target tries ``FUZZ_EXAMPLES`` inputs (default 60, a few seconds per
target on a CPU); set the environment variable higher for a longer search. The number of inputs tried is printed.
"""
import json
import os
import resource
import shutil
import struct
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip('hypothesis')
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EXAMPLES = int(os.environ.get('FUZZ_EXAMPLES', '60'))
FUZZ = settings(max_examples=EXAMPLES, deadline=5000, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
TINY = dict(arch=dict(embed_dims=32, num_layers=2, num_heads=2, mlp_ratio=2.0), img_size=28, patch_size=14,
            num_frames=2, tubelet_size=1, in_channels=3, num_cls_tokens=4, with_clip_projector=True,
            clip_embed_dims=16, clip_num_heads=2)
MAX_GROWTH_MB = 300
tried = {}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def count(target: str) -> None:
    tried[target] = tried.get(target, 0) + 1


@pytest.fixture(scope='module', autouse=True)
def report():
    yield
    print(f'\nfuzz inputs tried: {tried}')


# ------------------------------------------------------------------------------------------ lists
LINE_PARTS = st.sampled_from(['a.mp4', 'dir/b c.mp4', '\t', ' ', '  ', '0', '3', '7', '-1', 'x', '1.5', '\ufeff',
                              '\r', '\n', '\u00e9', '10.0', '2.0', '5'])
RAW_BYTES = st.binary(max_size=200)


def list_bytes():
    text = st.lists(LINE_PARTS, max_size=30).map(lambda parts: ''.join(parts).encode('utf-8'))
    return st.one_of(text, RAW_BYTES, st.tuples(text, RAW_BYTES).map(lambda pair: pair[0] + pair[1]))


@FUZZ
@given(data=list_bytes())
def test_list_readers_parse_or_name_the_line(data):
    from ivnext.api.extraction import list_videos
    from ivnext.datasets.video_list import read_video_list
    count('lists')
    bom = '\ufeff'.encode()
    # a BOM that opens the file is dropped; one that opens a later line (after blank ones) is part of that path
    leading_bom = data.startswith(bom) and not data[3:].lstrip(b' \t\r\n').startswith(bom)
    folder = tempfile.mkdtemp()
    try:
        path = os.path.join(folder, 'list.txt')
        with open(path, 'wb') as f:
            f.write(data)
        for kwargs in (dict(num_classes=4), dict(label_required=False, field_counts=(2, 5))):
            try:
                rows = read_video_list(path, **kwargs)
            except ValueError as err:
                assert f'{path}:' in str(err), err
                continue
            for where, clip, label, rest in rows:
                assert where.startswith(f'{path}:') and clip and '\n' not in clip
                assert not (leading_bom and where == f'{path}:1' and clip.startswith('\ufeff'))  # the BOM is dropped
                assert -1 <= label and (kwargs.get('num_classes') is None or label < 4)
        try:
            videos = list_videos(path)
        except ValueError as err:
            assert f'{path}:' in str(err), err
        else:
            assert all(v.strip() and '\n' not in v for v in videos)
            assert not (leading_bom and videos and os.path.basename(videos[0]).startswith('\ufeff'))
    finally:
        shutil.rmtree(folder)


# ------------------------------------------------------------------------------------------ config.json
@pytest.fixture(scope='module')
def saved_folder(tmp_path_factory):
    import torch

    from ivnext.api.encoder import VideoEncoder
    folder = tmp_path_factory.mktemp('saved') / 'enc'
    torch.manual_seed(0)
    encoder = VideoEncoder(TINY)
    encoder.save_pretrained(str(folder))
    return folder, encoder.weights_fingerprint()


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.text(max_size=8)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8)
ENCODER_FIELDS = st.sampled_from(['arch', 'img_size', 'patch_size', 'num_frames', 'tubelet_size', 'in_channels',
                                  'num_cls_tokens', 'with_clip_projector', 'clip_embed_dims', 'clip_num_heads',
                                  'drop_path_rate', 'layer_scale_init_value', 'unknown_field'])
ARCH_FIELDS = st.sampled_from(['embed_dims', 'num_layers', 'num_heads', 'mlp_ratio'])
SIZES = st.one_of(st.integers(-4, 4096), st.sampled_from([2**31, 2**40, 8192, 64]), JSON_VALUES)


def config_edits():
    encoder_edit = st.tuples(st.just('encoder'), ENCODER_FIELDS, SIZES)
    arch_edit = st.tuples(st.just('arch'), ARCH_FIELDS, SIZES)
    prep_edit = st.tuples(st.just('preprocessing'), st.sampled_from(['num_frames', 'crop', 'resize', 'mean', 'bad']),
                          SIZES)
    top_edit = st.tuples(st.just('top'), st.sampled_from(['encoder', 'preprocessing', 'model_type']), JSON_VALUES)
    return st.lists(st.one_of(encoder_edit, arch_edit, prep_edit, top_edit), min_size=1, max_size=4)


@FUZZ
@given(edits=config_edits(), garbage=st.one_of(st.none(), st.binary(max_size=40)))
def test_saved_encoder_config_loads_or_names_the_file(saved_folder, edits, garbage):
    import ivnext
    count('config.json')
    source, fingerprint = saved_folder
    folder = Path(tempfile.mkdtemp()) / 'enc'
    try:
        shutil.copytree(source, folder)
        config = json.loads((folder / 'config.json').read_text())
        for kind, field, value in edits:
            if kind == 'top':
                config[field] = value
            elif kind == 'encoder' and isinstance(config.get('encoder'), dict):
                config['encoder'][field] = value
            elif kind == 'arch' and isinstance(config.get('encoder'), dict) \
                    and isinstance(config['encoder'].get('arch'), dict):
                config['encoder']['arch'][field] = value
            elif kind == 'preprocessing' and isinstance(config.get('preprocessing'), dict):
                config['preprocessing'][field] = value
        text = json.dumps(config).encode()
        (folder / 'config.json').write_bytes(text if garbage is None else text[:len(text) // 2] + garbage)
        before = peak_mb()
        try:
            encoder = ivnext.load_encoder(str(folder))
        except (ValueError, KeyError, FileNotFoundError) as err:
            assert str(folder) in str(err), f'{type(err).__name__} does not name the folder: {err}'
        else:
            assert encoder.weights_fingerprint() == fingerprint
        assert peak_mb() - before < MAX_GROWTH_MB
    finally:
        shutil.rmtree(folder.parent)


# ------------------------------------------------------------------------------------------ safetensors headers
DTYPES = st.sampled_from(['F32', 'F16', 'BF16', 'I64', 'U8', 'BOOL', 'F64', 'X9', '', None])
SHAPES = st.one_of(st.lists(st.integers(0, 6), max_size=4), st.lists(st.integers(-3, 2**62), max_size=4),
                   JSON_VALUES)


def entries():
    entry = st.fixed_dictionaries({'dtype': DTYPES, 'shape': SHAPES,
                                   'data_offsets': st.one_of(st.lists(st.integers(-5, 2**63), min_size=2, max_size=2),
                                                             st.lists(st.integers(0, 400), min_size=2, max_size=2),
                                                             JSON_VALUES)})
    return st.dictionaries(st.sampled_from(['w', 'b', 'patch_embed.proj.weight', '__metadata__']), entry | JSON_VALUES,
                           max_size=3)


@FUZZ
@given(header=entries(), data=st.binary(max_size=400), length_delta=st.integers(-10, 10),
       huge_length=st.booleans())
def test_safetensors_headers_load_or_name_the_file(header, data, length_delta, huge_length):
    from ivnext.utils.checkpoint import CorruptCheckpointError, read_state_dict
    count('safetensors')
    folder = tempfile.mkdtemp()
    try:
        path = os.path.join(folder, 'weights.safetensors')
        raw = json.dumps(header).encode()
        length = 2**62 if huge_length else max(0, len(raw) + length_delta)
        with open(path, 'wb') as f:
            f.write(struct.pack('<Q', length) + raw + data)
        before = peak_mb()
        try:
            state = read_state_dict(path)
        except CorruptCheckpointError as err:
            assert path in str(err), err
        else:
            assert all(hasattr(v, 'shape') for v in state.values())
        assert peak_mb() - before < MAX_GROWTH_MB
    finally:
        shutil.rmtree(folder)

"""The Python API: save/load round trips, every weight source, Hub ids from a local cache, encode()."""
import datetime
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_video import render_clip, write_mp4
from safetensors.torch import save_file

import ivnext
from ivnext.api import Preprocessing, VideoEncoder, load_encoder
from ivnext.models.backbones import InternVideoNextViT
from ivnext.utils.checkpoint import CheckpointMismatchError
from ivnext.video import open_video

TINY = dict(arch=dict(embed_dims=64, num_layers=2, num_heads=4, mlp_ratio=2.0), img_size=28, patch_size=14,
            num_frames=4, with_clip_projector=True, clip_embed_dims=32, clip_num_heads=4, use_flash_attn=False)
PREP = dict(num_frames=4, frame_interval=2, resize=32, crop=28)


@pytest.fixture(scope='module')
def encoder() -> VideoEncoder:
    torch.manual_seed(0)
    return VideoEncoder(TINY, Preprocessing(**PREP))


@pytest.fixture(scope='module')
def clips() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(3, 3, 4, 28, 28)


@pytest.fixture(scope='module')
def video(tmp_path_factory) -> Path:
    frames = np.concatenate([render_clip(i % 4, 20, 48, seed=i) for i in range(2)])  # 40 frames, 4 s at 10 fps
    return write_mp4(tmp_path_factory.mktemp('api') / 'clip.mp4', frames, fps=10)


def assert_same_outputs(a: VideoEncoder, b: VideoEncoder, clips: torch.Tensor, exact: bool = True) -> None:
    for output in ('pooled', 'avg', 'tokens'):
        x, y = a(clips, output), b(clips, output)
        if exact:
            assert torch.equal(x, y), output
        else:
            torch.testing.assert_close(x, y)


def test_save_pretrained_round_trip_is_exact(encoder, clips, tmp_path):
    written = encoder.save_pretrained(tmp_path / 'enc')
    assert sorted(Path(p).name for p in written) == ['config.json', 'model.safetensors']
    config = json.loads((tmp_path / 'enc' / 'config.json').read_text())
    assert config['model_type'] == 'ivnext-video-encoder' and config['preprocessing']['crop'] == 28
    loaded = VideoEncoder.from_pretrained(tmp_path / 'enc')
    assert loaded.preprocessing == encoder.preprocessing
    assert_same_outputs(encoder, loaded, clips)
    for key, value in encoder.backbone.state_dict().items():
        assert torch.equal(value, loaded.backbone.state_dict()[key]), key
    # load_encoder on the folder and the top-level lazy export give the same model.
    assert_same_outputs(encoder, ivnext.load_encoder(str(tmp_path / 'enc')), clips)
    # Preprocessing overrides at load time.
    assert load_encoder(str(tmp_path / 'enc'), fps=2.0).preprocessing.fps == 2.0


def test_released_folder_layout_and_files(encoder, clips, tmp_path):
    state = {k: v.contiguous() for k, v in encoder.backbone.state_dict().items()}
    # The authors' layout: bare encoder keys in model.safetensors, next to a config.json of another library.
    folder = tmp_path / 'released'
    folder.mkdir()
    save_file(state, str(folder / 'model.safetensors'))
    (folder / 'config.json').write_text(json.dumps({'architectures': ['InternVideoNext'], 'auto_map': {}}))
    with pytest.raises(ValueError, match='num_heads'):
        load_encoder(str(folder))  # width 64 is none of the paper's sizes
    released = load_encoder(str(folder), num_heads=4, clip_num_heads=4, **PREP)
    assert released.encoder_config['num_frames'] == 4 and released.encoder_config['clip_embed_dims'] == 32
    assert_same_outputs(encoder, released, clips)

    # A recognizer-style .pth (weights only, backbone. prefix, a head beside it).
    recognizer = {'state_dict': {**{f'backbone.{k}': v for k, v in state.items()},
                                 'cls_head.fc_cls.weight': torch.zeros(4, 64)}}
    torch.save(recognizer, tmp_path / 'recognizer.pth')
    assert_same_outputs(encoder, load_encoder(str(tmp_path / 'recognizer.pth'), num_heads=4, clip_num_heads=4,
                                              **PREP), clips)

    # A Stage-2 training checkpoint: student and frozen teacher, plus pickled Python objects beside the tensors.
    shifted = {k: v + 1 if v.is_floating_point() else v for k, v in state.items()}
    stage2 = {'state_dict': {**{f'backbone.{k}': v for k, v in state.items()},
                             **{f'teacher.{k}': v for k, v in shifted.items()}},
              'meta': dict(epoch=np.int64(3), started=datetime.date(2026, 1, 2)),
              'message_hub': dict(loss=[np.float64(0.1)])}
    torch.save(stage2, tmp_path / 'epoch_3.pth')
    with pytest.raises(pickle.UnpicklingError, match='trust_checkpoint=True'):
        load_encoder(str(tmp_path / 'epoch_3.pth'), num_heads=4)
    trusted = load_encoder(str(tmp_path / 'epoch_3.pth'), trust_checkpoint=True, num_heads=4, clip_num_heads=4,
                           **PREP)
    assert_same_outputs(encoder, trusted, clips)  # the student ('backbone.'), not the teacher
    teacher = load_encoder(str(tmp_path / 'epoch_3.pth'), trust_checkpoint=True, prefix='teacher.', num_heads=4,
                           clip_num_heads=4, **PREP)
    assert not torch.equal(teacher(clips, 'avg'), encoder(clips, 'avg'))

    # Weights without the projector give an encoder without one; 'pooled' then says what to use instead.
    save_file({k: v for k, v in state.items() if not k.startswith('clip_projector.')}, str(tmp_path / 'np.safetensors'))
    plain = load_encoder(str(tmp_path / 'np.safetensors'), num_heads=4, **PREP)
    assert not plain.has_projector
    torch.testing.assert_close(plain(clips, 'avg'), encoder(clips, 'avg'), rtol=0, atol=0)
    with pytest.raises(ValueError, match="output='avg'"):
        plain(clips, 'pooled')
    # Missing encoder tensors are refused, not silently random.
    save_file({k: v for k, v in state.items() if k != 'blocks.1.mlp.fc2.weight'}, str(tmp_path / 'partial.safetensors'))
    with pytest.raises(CheckpointMismatchError, match='1 missing: blocks.1.mlp.fc2.weight'):
        load_encoder(str(tmp_path / 'partial.safetensors'), num_heads=4, **PREP)


def populate_hub_cache(cache: Path, repo_id: str, files: dict, commit: str = 'a' * 40) -> Path:
    """Lay files out as huggingface_hub's cache does (snapshots/<commit>, refs/main)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / 'snapshots' / commit
    snapshot.mkdir(parents=True)
    (repo / 'refs').mkdir()
    (repo / 'refs' / 'main').write_text(commit)
    for name, writer in files.items():
        writer(snapshot / name)
    return snapshot


def test_hub_id_resolves_from_the_local_cache_without_network(encoder, clips, tmp_path, monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    cache = tmp_path / 'hub'
    src = tmp_path / 'src'
    encoder.save_pretrained(src)
    populate_hub_cache(cache, 'someone/tiny-ivnext', {
        'config.json': lambda p: p.write_bytes((src / 'config.json').read_bytes()),
        'model.safetensors': lambda p: p.write_bytes((src / 'model.safetensors').read_bytes())})
    loaded = load_encoder('someone/tiny-ivnext', cache_dir=str(cache))
    assert_same_outputs(encoder, loaded, clips)
    # The same through HF_HUB_CACHE instead of cache_dir.
    monkeypatch.setenv('HF_HUB_CACHE', str(cache))
    import huggingface_hub.constants as constants
    monkeypatch.setattr(constants, 'HF_HUB_CACHE', str(cache))
    assert_same_outputs(encoder, load_encoder('someone/tiny-ivnext'), clips)

    with pytest.raises(FileNotFoundError) as info:
        load_encoder('someone/not-cached', cache_dir=str(cache))
    assert 'someone/not-cached' in str(info.value) and str(cache) in str(info.value)
    with pytest.raises(FileNotFoundError, match='revliter/internvideo_next_base_p14_res224_f16'):
        load_encoder('internvideo-next-base', cache_dir=str(cache))
    with pytest.raises(FileNotFoundError, match='not a preset'):
        load_encoder('no such thing')


def test_encode_windows_match_the_model_on_decoded_frames(encoder, video):
    out = encoder.encode(str(video), stride=1.0, stride_unit='seconds', batch_size=2)
    # 40 frames at 10 fps, every 2nd frame -> 20 grid points at 5/s; windows of 4, stride 5 -> 4 windows.
    assert out.features.shape == (4, 32)
    np.testing.assert_allclose(out.starts, [0.0, 1.0, 2.0, 3.0], atol=1e-5)
    np.testing.assert_allclose(out.ends, out.starts + 0.8, atol=1e-5)
    np.testing.assert_array_equal(out.frame_indices[1], [10, 12, 14, 16])
    assert out.time_unit == 'seconds' and out.source_fps == pytest.approx(10.0)
    reader = open_video(str(video))
    frames = reader.get_frames(out.frame_indices.reshape(-1)).reshape(4, 4, 48, 48, 3)
    with torch.no_grad():
        expected = encoder(encoder.preprocess(frames), 'pooled')
    torch.testing.assert_close(out.features, expected)
    # Frames in memory give the same windows as the file.
    decoded = reader.get_frames(np.arange(reader.num_frames))
    from_array = encoder.encode(decoded, stride=5, video_fps=10.0)
    torch.testing.assert_close(from_array.features, out.features)
    np.testing.assert_allclose(from_array.starts, out.starts, atol=1e-5)
    # One clip over the whole video (default), and prepared clips as they are.
    single = encoder.encode(str(video), output='avg')
    assert single.features.shape == (1, 64)
    np.testing.assert_array_equal(single.frame_indices[0], [5, 15, 25, 35])
    clips = encoder.preprocess(frames)
    torch.testing.assert_close(encoder.encode(clips, output='tokens', batch_size=3).features,
                               encoder(clips, 'tokens'))


def test_preprocess_resizes_short_side_crops_centre_and_normalises(encoder):
    frames = np.zeros((1, 1, 64, 96, 3), dtype=np.uint8)
    frames[..., 0] = 255
    x = encoder.preprocess(frames)
    assert x.shape == (1, 3, 1, 28, 28)
    torch.testing.assert_close(x[0, 0], torch.full((1, 28, 28), (255 - 123.675) / 58.395))
    torch.testing.assert_close(x[0, 1], torch.full((1, 28, 28), -116.28 / 57.12))
    # The crop is the centre: a marker in the middle of the frame lands in the middle of the crop.
    frames = np.zeros((1, 1, 64, 96, 3), dtype=np.uint8)
    frames[:, :, 30:34, 46:50] = 255
    x = encoder.preprocess(frames)[0, 0, 0]
    peak = np.unravel_index(int(x.argmax()), x.shape)
    assert abs(peak[0] - 13.5) <= 1.5 and abs(peak[1] - 13.5) <= 1.5


def test_base_preset_without_weights_has_the_paper_shape():
    model = load_encoder('base', pretrained=False)
    assert isinstance(model.backbone, InternVideoNextViT)
    assert (model.backbone.embed_dims, model.backbone.num_layers, model.backbone.num_heads) == (768, 12, 12)
    assert model.preprocessing.num_frames == 16 and model.feature_dim('pooled') == 768

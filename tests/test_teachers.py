import copy

import pytest
import torch
import torch.nn.functional as F

import ivnext  # noqa: F401
from mmaction.registry import MODELS
from ivnext.models.teachers import CLIPTeacher, DINOv2Teacher, SigLIP2Teacher, default_return_layers

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1, 1)

SIGLIP2 = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=8, num_attention_heads=4, patch_size=4,
               num_patches=16)
SIGLIP = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=8, num_attention_heads=4, patch_size=4,
              image_size=16)
CLIP = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=7, num_attention_heads=4, patch_size=4,
            image_size=16, projection_dim=24)
DINO = dict(hidden_size=32, num_hidden_layers=7, num_attention_heads=4, patch_size=4, image_size=32)


def _clip(b=2, t=3, size=16, seed=0):
    raw = torch.rand(b, 3, t, size, size, generator=torch.Generator().manual_seed(seed)) * 255
    return raw, (raw - MEAN) / STD


def _teachers():
    torch.manual_seed(0)
    return [
        SigLIP2Teacher(model_config=SIGLIP2, num_return_layers=3, return_interval=2),
        SigLIP2Teacher(variant='siglip', model_config=SIGLIP, return_layers=[2, -1]),
        CLIPTeacher(model_config=CLIP, image_size=16, num_return_layers=2),
        DINOv2Teacher(model_config=DINO, image_size=16, return_layers=[1, 4, 6]),
    ]


def _reference(teacher, frames):
    """Plain transformers run (eager attention) on the teacher's preprocessed frames."""
    model = copy.deepcopy(teacher.model)
    model.set_attn_implementation('eager')
    if isinstance(teacher, SigLIP2Teacher):
        f, c, s, _ = frames.shape
        g = s // teacher.patch_size
        if teacher.variant == 'siglip2':
            p = teacher.patch_size
            patches = frames.reshape(f, c, g, p, g, p).permute(0, 2, 4, 3, 5, 1).reshape(f, g * g, -1)
            out = model(pixel_values=patches, pixel_attention_mask=torch.ones(f, g * g, dtype=torch.long),
                        spatial_shapes=torch.tensor([[g, g]] * f), output_hidden_states=True)
        else:
            out = model(pixel_values=frames, output_hidden_states=True)
        head = getattr(model, 'vision_model', model).head  # transformers 4.x nests the tower
        _, weights = head.attention(head.probe.expand(f, -1, -1), out.last_hidden_state, out.last_hidden_state,
                                    need_weights=True, average_attn_weights=True)
        return out.hidden_states, out.pooler_output, weights[:, 0], 0
    if isinstance(teacher, CLIPTeacher):
        out = model(pixel_values=frames, output_hidden_states=True, output_attentions=True)
        pooled = out.image_embeds
    else:
        out = model(pixel_values=frames, output_hidden_states=True, output_attentions=True)
        pooled = out.pooler_output
    attn = out.attentions[-1][:, :, 0, 1:].mean(1)
    return out.hidden_states, pooled, attn / attn.sum(-1, keepdim=True), 1


@pytest.mark.parametrize('index', range(4))
def test_teacher_outputs_match_transformers(index):
    teacher = _teachers()[index]
    b, t = 2, 3
    _, clip = _clip(b, t, size=20)
    out = teacher(clip)
    gh, gw = teacher.grid_size()
    assert out['grid'] == (t, gh, gw) == (t, 4, 4)
    n = t * gh * gw
    frames = teacher.preprocess(clip)
    assert frames.shape == (b * t, 3, 16, 16)
    with torch.no_grad():
        hidden, pooled, attn, prefix = _reference(teacher, frames)
    assert len(out['hidden_states']) == len(teacher.return_layers)
    for layer, h in zip(teacher.return_layers, out['hidden_states']):
        assert h.shape == (b, n, teacher.embed_dims)
        ref = F.normalize(hidden[layer][:, prefix:], dim=-1).reshape(b, n, -1)
        torch.testing.assert_close(h, ref, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(h.norm(dim=-1), torch.ones(b, n))
    ref_pooled = F.normalize(pooled, dim=-1).view(b, t, -1)
    assert out['pooled_frames'].shape == (b, t, teacher.pooled_dims)
    torch.testing.assert_close(out['pooled_frames'], ref_pooled, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out['pooled'], ref_pooled.mean(1))
    assert out['importance'].shape == (b, t, gh * gw)
    torch.testing.assert_close(out['importance'].sum(-1), torch.ones(b, t))
    torch.testing.assert_close(out['importance'], attn.reshape(b, t, -1), atol=1e-5, rtol=1e-4)
    # frames are independent: sample 1 / frame 2 alone gives the same tokens
    single = teacher(clip[1:, :, 2:])
    torch.testing.assert_close(single['hidden_states'][-1], out['hidden_states'][-1][1:, 2 * gh * gw:],
                               atol=1e-5, rtol=1e-4)


def test_preprocess_renormalises_with_teacher_stats():
    raw, clip = _clip(1, 2, size=16)
    for teacher, mean, std in ((_teachers()[0], 0.5, 0.5), (_teachers()[3], None, None)):
        frames = teacher.preprocess(clip)
        x = raw[0].transpose(0, 1) / 255.
        if mean is None:
            mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
            std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        torch.testing.assert_close(frames, (x - mean) / std, atol=1e-5, rtol=1e-5)
    teacher = CLIPTeacher(model_config=CLIP, mean=(0.1, 0.2, 0.3), std=(0.5, 0.5, 0.5))
    frames = teacher.preprocess(clip)
    torch.testing.assert_close(frames[:, 2], (raw[0, 2] / 255 - 0.3) / 0.5, atol=1e-5, rtol=1e-5)
    # a different clip size is resized (bicubic) to the teacher's image_size
    raw20, clip20 = _clip(1, 2, size=20)
    expected = F.interpolate(raw20[0].transpose(0, 1) / 255., size=(16, 16), mode='bicubic', align_corners=False)
    torch.testing.assert_close(teacher.preprocess(clip20), (expected - 0.2 + 0.1 * torch.tensor([1., 0., -1.]).view(
        1, 3, 1, 1)) / 0.5, atol=1e-5, rtol=1e-5)


def test_teacher_is_frozen():
    for teacher in _teachers():
        before = {k: v.clone() for k, v in teacher.state_dict().items()}
        assert not any(p.requires_grad for p in teacher.parameters())
        teacher.train()
        assert not teacher.training and not teacher.model.training
        teacher.init_weights()
        after = teacher.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
        _, clip = _clip(1, 1)
        clip.requires_grad_(True)
        out = teacher(clip)
        assert not out['hidden_states'][0].requires_grad and not out['pooled'].requires_grad
        trainable = [p for p in teacher.parameters() if p.requires_grad]
        assert trainable == []


def test_build_from_registry_and_properties():
    teacher = MODELS.build(dict(type='DINOv2Teacher', model_config=DINO, image_size=16))
    assert isinstance(teacher, DINOv2Teacher)
    assert teacher.embed_dims == 32 and teacher.pooled_dims == 32 and teacher.grid_size(224, 224) == (4, 4)
    assert teacher.return_layers == [1, 2, 3, 4, 5, 6]  # inputs of the last 6 layers
    assert teacher.num_cls_tokens == 1
    clip_t = MODELS.build(dict(type='CLIPTeacher', model_config=CLIP))
    assert clip_t.pooled_dims == 24 and clip_t.image_size == 16
    assert MODELS.get('SigLIPTeacher') is SigLIP2Teacher
    siglip2 = SigLIP2Teacher(model_config=SIGLIP2, num_return_layers=2)
    assert siglip2.image_size == 16 and siglip2.variant == 'siglip2'


def test_default_return_layers_release_schedule():
    # SigLIP2-1B (40 layers), 6 layers every 3.33: the released Stage-1 recipe
    assert default_return_layers(40, 6, 3.33) == [23, 26, 30, 33, 36, 39]
    assert default_return_layers(12) == [6, 7, 8, 9, 10, 11]
    with pytest.raises(ValueError, match='num_return_layers'):
        default_return_layers(4, 6)


def test_load_from_local_dir(tmp_path):
    teachers = _teachers()
    _, clip = _clip(1, 2)
    for i, teacher in enumerate(teachers):
        path = tmp_path / str(i)
        teacher.model.save_pretrained(path)
        kwargs = dict(return_layers=teacher.return_layers)
        if isinstance(teacher, DINOv2Teacher):
            kwargs['image_size'] = 16
        loaded = type(teacher)(pretrained=str(path), **kwargs)
        if isinstance(teacher, SigLIP2Teacher):
            assert loaded.variant == teacher.variant
        a, b = teacher(clip), loaded(clip)
        torch.testing.assert_close(a['hidden_states'][0], b['hidden_states'][0])
        torch.testing.assert_close(a['importance'], b['importance'])


def test_bad_configuration_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='pretrained'):
        DINOv2Teacher(pretrained=str(tmp_path / 'missing'))
    with pytest.raises(ValueError, match='exactly one'):
        DINOv2Teacher()
    with pytest.raises(ValueError, match='return_layers'):
        DINOv2Teacher(model_config=DINO, return_layers=[7])
    with pytest.raises(ValueError, match='multiple'):
        DINOv2Teacher(model_config=DINO, image_size=18)
    with pytest.raises(ValueError, match='dtype'):
        DINOv2Teacher(model_config=DINO, dtype='fp8')
    with pytest.raises(ValueError, match='clip'):
        DINOv2Teacher(model_config=DINO, image_size=16)(torch.zeros(1, 3, 16, 16))


def test_bfloat16_teacher_returns_float32():
    teacher = DINOv2Teacher(model_config=DINO, image_size=16, dtype='bfloat16')
    ref = DINOv2Teacher(model_config=DINO, image_size=16)
    ref.model.load_state_dict({k: v.float() for k, v in teacher.model.state_dict().items()})
    _, clip = _clip(1, 2)
    out, out_ref = teacher(clip), ref(clip)
    assert teacher.dtype == torch.bfloat16 and out['hidden_states'][-1].dtype == torch.float32
    assert (out['hidden_states'][-1] - out_ref['hidden_states'][-1]).abs().max() < 0.1

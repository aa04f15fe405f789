"""ivnext's Stage-1 training step against golden numbers from the authors' training code.

``tests/fixtures/release_training/stage1_tiny.*`` were written by ``tools/convert/verify_training_equivalence.py
--fixture`` from the authors' ``InternVideo_next_s1.py`` (commit in the JSON) at tiny widths: the injected draws
(visible tokens, teacher targets, diffusion timesteps and noise), the release's outputs, losses and the first
values of some gradients. The weights are :func:`ivnext.convert.release_training.fill_deterministic` of ivnext's
model, copied to the release with the key map, so nothing but numbers is stored.
"""
import importlib.util
import json
import os.path as osp

import pytest
import torch

from ivnext.convert.release_training import (pixel_permutation, stage1_from_release, stage1_release_name,
                                             stage1_to_release)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIXTURES = osp.join(ROOT, 'tests', 'fixtures', 'release_training')
TOLERANCE = 1e-5
# Gradient slices (256 values of a tensor, norm-relative): backpropagation through the 1024-wide predictor layers
# leaves fp32 rounding up to ~2.5e-5 in some slices (e.g. the predictor position table's CLS rows) at these widths.
GRAD_TOLERANCE = 1e-4


def _tool():
    path = osp.join(ROOT, 'tools', 'convert', 'verify_training_equivalence.py')
    spec = importlib.util.spec_from_file_location('verify_training_equivalence', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_fixture(width: str = 'tiny'):
    from safetensors.torch import load_file
    tensors = load_file(osp.join(FIXTURES, f'stage1_{width}.safetensors'))
    with open(osp.join(FIXTURES, f'stage1_{width}.json')) as f:
        meta = json.load(f)
    return tensors, meta


def _draws(tool, tensors, w):
    draws = dict(clip=1.5 * tool.deterministic_values('clip', (w['batch'], 3, w['frames'], w['img_size'],
                                                                  w['img_size'])),
                 mask=tensors['draw.mask'].bool(), teacher_hidden=tensors['draw.teacher_hidden'],
                 teacher_pooled_frames=tensors['draw.teacher_pooled_frames'],
                 timesteps=tensors['draw.timesteps'], noise=tensors['draw.noise'].float())
    return draws


def _relative(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return ((ours.double() - ref.double()).abs().max() / ref.double().abs().max()).item()


def _norm_relative(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """||ours - ref|| / ||ref||: gradients are sums over many rows whose small entries carry fp32 rounding."""
    return ((ours.double() - ref.double()).norm() / ref.double().norm()).item()


def run_stage1(patch=None):
    """ivnext's step on the fixture's draws; ``patch(model)`` may alter the model first."""
    tool = _tool()
    tensors, meta = _load_fixture()
    w = meta['shapes']
    torch.manual_seed(0)
    model = tool.build_ivnext_stage1(w)
    if patch is not None:
        patch(model)
    out = tool.run_ivnext_stage1(model, _draws(tool, tensors, w))
    return model, out, tensors, meta


def mismatches(model, out, tensors, meta) -> dict:
    """Relative differences above the tolerance, by component."""
    bad = {}
    for name, value in meta['losses'].items():
        rel = abs(out[name].item() - value) / abs(value)
        if rel > TOLERANCE:
            bad[name] = rel
    num_cls = model.backbone.num_cls_tokens
    checks = dict(encoder=(out['encoder'], tensors['release.encoder']),
                  align_pooled=(out['align_pooled'], tensors['release.align_pooled']),
                  diffusion_mse=(out['diffusion_mse'], tensors['release.diffusion_mse']),
                  diffusion_vlb=(out['diffusion_vlb'], tensors['release.diffusion_vlb']),
                  predictor=(out['predictor'][0, :num_cls + 8, :128], tensors['release.predictor_head']),
                  align_tokens=(out['align_tokens'][:, 0, :8], tensors['release.align_tokens_head']))
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    mapped = stage1_to_release(grads)
    for key, ref in tensors.items():
        if key.startswith('grad.'):
            name = key[len('grad.'):]
            checks[key] = (mapped[name].flatten()[:ref.numel()], ref)
    for name, (ours, ref) in checks.items():
        is_grad = name.startswith('grad.')
        rel = (_norm_relative if is_grad else _relative)(ours, ref)
        if rel > (GRAD_TOLERANCE if is_grad else TOLERANCE):
            bad[name] = rel
    return bad


@pytest.fixture(scope='module')
def stage1_run():
    return run_stage1()


def test_fixture_is_small_and_names_its_commit():
    tensors, meta = _load_fixture()
    assert osp.getsize(osp.join(FIXTURES, 'stage1_tiny.safetensors')) < 100_000
    assert len(meta['release_commit']) == 40


def test_stage1_step_reproduces_release_losses_outputs_and_gradients(stage1_run):
    model, out, tensors, meta = stage1_run
    assert mismatches(model, out, tensors, meta) == {}


def test_broken_vlb_weight_is_caught():
    """Doubling the VLB term (a wrong hybrid-loss weight) must make the fixture comparison fail."""

    def double_vlb(model):
        vlb_terms = model.head.vlb_terms
        model.head.vlb_terms = lambda *args, **kwargs: 2 * vlb_terms(*args, **kwargs)

    bad = mismatches(*run_stage1(double_vlb))
    assert 'diffusion_vlb' in bad and 'loss_diffusion' in bad and 'loss' in bad


def test_key_map_round_trip_and_pixel_layout():
    tool = _tool()
    _, meta = _load_fixture()
    model = tool.build_ivnext_stage1(meta['shapes'])
    state = {k: v for k, v in model.state_dict().items() if not k.startswith('teacher.')}
    back = stage1_from_release(stage1_to_release(state), list(state))
    assert set(back) == {k for k in state if stage1_release_name(k) is not None}
    for key, value in back.items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    # ivnext's patch vector (p_h, p_w, c) is the release's (c, p_h, p_w) vector re-indexed.
    clip = torch.randn(1, 3, 1, 14, 14)
    ours = clip[0, :, 0].permute(1, 2, 0).reshape(-1)
    theirs = torch.nn.functional.pixel_unshuffle(clip[:, :, 0], 14).reshape(-1)
    torch.testing.assert_close(ours, theirs[pixel_permutation(14)])

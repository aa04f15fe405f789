"""ivnext's Stage-1 training step against golden numbers from the authors' training code.

``tests/fixtures/release_training/stage1_tiny.*`` were written by ``tools/convert/verify_training_equivalence.py
--fixture`` from the authors' ``InternVideo_next_s1.py`` and ``siglip_teacher.py`` (commit in the JSON) at tiny
widths: the injected draws (visible tokens, teacher targets, diffusion timesteps and noise), the release's outputs,
losses and the first values of some gradients; the release teacher's targets (hidden states, pooled embeddings,
attention) on the step's clip; how often ``torch.multinomial`` drew each visible set; and short DDPM / DDIM
sampling chains (temperature, classifier-free guidance) from a stored noise sequence. The weights are
:func:`ivnext.convert.release_training.fill_deterministic` of ivnext's model, copied to the release with the key
map, so nothing but numbers is stored.
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
    assert osp.getsize(osp.join(FIXTURES, 'stage1_tiny.safetensors')) < 150_000
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


# ------------------------------------------------------------------------------------------- image teacher
def teacher_mismatches(tool, tensors, w) -> dict:
    teacher = tool.build_ivnext_teacher(w)
    clip = 1.5 * tool.deterministic_values('clip', (w['batch'], 3, w['frames'], w['img_size'], w['img_size']))
    out = tool.run_ivnext_teacher(teacher, clip)
    bad = {}
    for name in ('teacher_hidden', 'teacher_pooled_frames', 'teacher_importance'):
        rel = _relative(out[name], tensors[f'release.{name}'])
        if rel > TOLERANCE:
            bad[name] = rel
    return bad


def test_siglip2_teacher_reproduces_release_targets():
    """Aligned-layer inputs (L2-normalised), pooled embeddings and the pooling attention of the release's teacher."""
    tool = _tool()
    tensors, meta = _load_fixture()
    assert teacher_mismatches(tool, tensors, meta['shapes']) == {}


def test_broken_teacher_layer_choice_is_caught(monkeypatch):
    """Returning the outputs instead of the inputs of the aligned layers must fail the teacher comparison."""
    tool = _tool()
    tensors, meta = _load_fixture()
    build = tool.build_ivnext_teacher

    def shifted(w):
        teacher = build(w)
        teacher.return_layers = [i + 1 for i in teacher.return_layers[:-1]] + [teacher.return_layers[-1]]
        return teacher

    monkeypatch.setattr(tool, 'build_ivnext_teacher', shifted)
    assert 'teacher_hidden' in teacher_mismatches(tool, tensors, meta['shapes'])


# --------------------------------------------------------------------------------- semantic-aware masks
MASK_ALPHA = 0.01


def mask_frames(tool, tensors):
    importance = tensors['release.teacher_importance'].flatten(0, 1)
    return torch.cat([importance, tool.skewed_importance(importance.shape[-1])[None]])


def mask_p_values(tool, tensors, meta, selection=None) -> dict:
    """Bonferroni-adjusted p-values of ivnext's draws: against the exact law and against the release's counts."""
    frames = mask_frames(tool, tensors)
    f, length = frames.shape
    k = length - int(length * tool.MASK_RATIO)
    draws = meta['mask_draws']
    sel = (selection or tool.ivnext_selection)(frames, k, draws, 7)
    gof, homo = [], []
    for frame in range(f):
        law = tool.exact_set_probabilities(frames[frame], k)
        keys = sorted(law)
        codes = torch.tensor([sum(1 << i for i in key) for key in keys])
        counts = ((1 << sel[:, frame]).sum(-1)[:, None] == codes[None]).sum(0).double()
        expected = torch.tensor([law[key] for key in keys], dtype=torch.float64) * draws
        gof.append(tool.chi_square(counts, expected)[2])
        homo.append(tool.two_sample_chi_square(counts, tensors['release.mask_set_counts'][frame])[2])
    return dict(gof=min(1.0, f * min(gof)), homogeneity=min(1.0, f * min(homo)))


def test_semantic_mask_law_matches_release_multinomial():
    """Gumbel-top-k draws the release's law: chi-square against the exact law of sequential sampling without
    replacement and against the release's ``torch.multinomial`` counts (200,000 draws a side, 5 frames)."""
    tool = _tool()
    tensors, meta = _load_fixture()
    p = mask_p_values(tool, tensors, meta)
    assert p['gof'] >= MASK_ALPHA and p['homogeneity'] >= MASK_ALPHA, p


def test_broken_mask_law_is_caught():
    """Drawing with probability proportional to importance squared must fail both tests."""
    tool = _tool()
    tensors, meta = _load_fixture()
    squared = lambda importance, k, draws, seed: tool.ivnext_selection(importance**2, k, draws, seed)  # noqa: E731
    p = mask_p_values(tool, tensors, meta, squared)
    assert p['gof'] < MASK_ALPHA and p['homogeneity'] < MASK_ALPHA, p


def test_same_selections_give_bitwise_same_mask_and_targets():
    tool = _tool()
    tensors, meta = _load_fixture()
    w = meta['shapes']
    importance = tensors['release.teacher_importance'].flatten(0, 1)
    k = importance.shape[-1] - int(importance.shape[-1] * tool.MASK_RATIO)
    for seed in range(5):
        selection = tool.release_selection(importance, k, 1, seed)[0]
        assert tool.selections_downstream_equal(selection, tensors['release.teacher_hidden'], w['batch'])


# ---------------------------------------------------------------------------------------- diffusion sampling
def sampling_mismatches(tool, model, tensors, meta) -> dict:
    noise = tensors['draw.sample_noise'].float()
    rows = noise.shape[1]
    bad = {}
    for i, (sampler, steps, temperature, cfg) in enumerate(meta['sampling_cases']):
        inputs = tool.sampling_inputs(rows, steps)
        inputs['noise'] = noise
        out = tool.run_ivnext_sampling(model.head, inputs, sampler, steps, temperature, cfg)
        rel = _relative(out, tensors[f'release.sample.{i}'])
        if rel > TOLERANCE:
            bad[f'{sampler} temperature {temperature} cfg {cfg}'] = rel
    return bad


def test_sampling_reproduces_release_ddpm_ddim_temperature_and_guidance(stage1_run):
    model, _, tensors, meta = stage1_run
    assert sampling_mismatches(_tool(), model, tensors, meta) == {}


def test_broken_temperature_is_caught(stage1_run, monkeypatch):
    """A sampler that ignores the temperature must fail the sampling comparison (only the case with T != 1)."""
    from ivnext.models.heads import conditional_diffusion_head as module
    model, _, tensors, meta = stage1_run
    step = module.reverse_step
    monkeypatch.setattr(module, 'reverse_step', lambda *args, **kwargs: step(*args, **{**kwargs, 'temperature': 1.0}))
    bad = sampling_mismatches(_tool(), model, tensors, meta)
    assert list(bad) == ['ddpm temperature 0.5 cfg 3.0'], bad

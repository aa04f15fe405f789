"""ivnext's Stage-2 step, multi-block masks and optimiser settings against golden numbers from the authors' code.

``tests/fixtures/release_training/stage2_tiny.*`` were written by ``tools/convert/verify_stage2_equivalence.py
--fixture`` from the authors' ``InternVideo_next_s2.py``, ``engines/jepa_mask.py``, ``optim_factory.py`` and
``utils.cosine_scheduler`` (commit in the JSON) at tiny widths: the release collator's masks with the boxes it
drew (the tiny step's two views and eight batches of four on the 4 x 16 x 16 grid of 224-px clips), the frozen
teacher's targets, the student encoder, predictor and latent head per view, the losses, the first values of some
gradients, the parameters the release exempts from weight decay and its per-iteration learning rate under the
release scripts' settings. The weights are :func:`ivnext.convert.release_training.fill_deterministic` of ivnext's
model (teacher included), so nothing but numbers is stored. ``stage2_tiny_pos_table.*`` hold the same step with
the release model built at 2 frames and run on 4-frame clips (its ``expand_pos_embed`` interpolating
``pos_embed`` and ``diff_pos_embed`` in time in every forward, as its 16-frame tables in 32-frame Stage 2):
masks, targets, encoder and head outputs, losses and the stored tables' gradients.
"""
import importlib.util
import json
import os.path as osp
import sys

import pytest
import torch

from ivnext.convert.release_training_stage2 import stage2_from_release, stage2_release_name, stage2_to_release

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIXTURES = osp.join(ROOT, 'tests', 'fixtures', 'release_training')
TOLERANCE = 1e-5
# Gradient slices (256 values, norm-relative): fp32 rounding through the 1024-wide predictor, as in Stage 1.
GRAD_TOLERANCE = 1e-4
LR_TOLERANCE = 1e-12


def _tool():
    name = 'verify_stage2_equivalence'
    if name not in sys.modules:
        path = osp.join(ROOT, 'tools', 'convert', f'{name}.py')
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _load_fixture():
    from safetensors.torch import load_file
    tensors = load_file(osp.join(FIXTURES, 'stage2_tiny.safetensors'))
    with open(osp.join(FIXTURES, 'stage2_tiny.json')) as f:
        meta = json.load(f)
    return tensors, meta


def _relative(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return ((ours.double() - ref.double()).abs().max() / ref.double().abs().max()).item()


def _norm_relative(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return ((ours.double() - ref.double()).norm() / ref.double().norm()).item()


def _draws(tool, tensors, w):
    draws = dict(clip=1.5 * tool.deterministic_values('clip', (w['batch'], 3, w['frames'], w['img_size'],
                                                                  w['img_size'])))
    for view in range(len(tool.VIEWS)):
        draws[f'mask_v{view}'] = tensors[f'draw.mask_v{view}'].bool()
        draws[f'blocks_v{view}'] = tensors[f'draw.blocks_v{view}']
    return draws


def mask_mismatches(tensors, masker_for=None) -> dict:
    """Masks ivnext builds from the release's boxes that differ from the release's (count per set of draws)."""
    tool = _tool()
    w = tool.WIDTHS['tiny']
    masker_for = masker_for or tool.ivnext_masker
    bad = {}
    for view in range(len(tool.VIEWS)):
        sets = [('tiny step', tool.grid_of(w), tensors[f'draw.blocks_v{view}'][None],
                 tensors[f'draw.mask_v{view}'][None]),
                ('224 px', (4, 16, 16), tensors[f'grid_masks.blocks_v{view}'], tensors[f'grid_masks.mask_v{view}'])]
        for label, grid, blocks, masks in sets:
            masker = masker_for(view, grid)
            wrong = sum(int((masker.mask_from_blocks(b, grid).mask != m.bool()).any(1).sum())
                        for b, m in zip(blocks, masks))
            if wrong:
                bad[f'{label} view {view}'] = wrong
    return bad


def run_stage2(patch=None):
    """ivnext's Stage-2 step on the fixture's clip and masks; ``patch(model)`` may alter the model first."""
    tool = _tool()
    tensors, meta = _load_fixture()
    w = tool.WIDTHS['tiny']
    torch.manual_seed(0)
    model = tool.build_ivnext_stage2(w)
    if patch is not None:
        patch(model)
    out = tool.run_ivnext_stage2(model, _draws(tool, tensors, w))
    return model, out, tensors, meta


def step_mismatches(model, out, tensors, meta) -> dict:
    """Components whose difference from the release's numbers exceeds the tolerance."""
    bad = {}
    checks = {'teacher_targets': (out['teacher_targets'], tensors['release.teacher_targets'])}
    for view in range(2):
        checks[f'encoder_v{view}'] = (out[f'encoder_v{view}'], tensors[f'release.encoder_v{view}'])
        checks[f'head_v{view}'] = (out[f'head_v{view}'], tensors[f'release.head_v{view}'])
        checks[f'predictor_v{view}'] = (out[f'predictor_v{view}'][:, :12, :128],
                                        tensors[f'release.predictor_v{view}_head'])
    for name, (ours, ref) in checks.items():
        if ours.shape != ref.shape or _relative(ours, ref) > TOLERANCE:
            bad[name] = _relative(ours, ref) if ours.shape == ref.shape else 'shape'
    for name, ref in meta['losses'].items():
        rel = abs(out[name].item() - ref) / abs(ref)
        if rel > TOLERANCE:
            bad[name] = rel
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    mapped, _ = stage2_to_release(grads)
    for key, ref in tensors.items():
        if key.startswith('grad.'):
            rel = _norm_relative(mapped[key[5:]].flatten()[:ref.numel()], ref)
            if rel > GRAD_TOLERANCE:
                bad[key] = rel
    return bad


@pytest.fixture(scope='module')
def stage2_run():
    return run_stage2()


def test_fixture_is_small_and_names_its_commit():
    tensors, meta = _load_fixture()
    assert len(meta['release_commit']) == 40
    size = osp.getsize(osp.join(FIXTURES, 'stage2_tiny.safetensors'))
    assert size < 400_000, size
    assert set(meta['no_decay']) == {'stage1', 'stage2'} and set(meta['lr']) == {'stage1', 'stage2'}


def test_masks_from_release_boxes_are_bitwise_equal():
    """Union, batch-minimum equalisation, the 400 * T / 8 cap and raster truncation, as the release's collator."""
    tensors, _ = _load_fixture()
    assert mask_mismatches(tensors) == {}
    # The draws exercise the cap (the 8-block view keeps int(400 * 4 / 8) context tokens) and the batch-minimum
    # equalisation (the 2-block view keeps fewer).
    kept = [(1 - tensors[f'grid_masks.mask_v{view}'].int()).sum(-1) for view in range(2)]
    assert (kept[0] == 200).any() and (kept[1] < 200).any()


def test_broken_context_cap_is_caught():
    """Without the 400 * T / 8 cap the masks differ from the release's."""
    from ivnext.models.maskers import MultiBlockMasker3D
    tool = _tool()
    tensors, _ = _load_fixture()

    def uncapped(view, grid):
        return MultiBlockMasker3D(**tool.VIEWS[view], context_order='raster')

    assert '224 px view 0' in mask_mismatches(tensors, uncapped)


def test_broken_context_order_is_caught():
    """Keeping a random rather than the earliest subset of the context differs from the release."""
    from ivnext.models.maskers import MultiBlockMasker3D
    tool = _tool()
    tensors, _ = _load_fixture()
    torch.manual_seed(0)

    def random_order(view, grid):
        return MultiBlockMasker3D(**tool.VIEWS[view], max_context_ratio=tool.CONTEXT_RATIO, context_order='random')

    assert '224 px view 0' in mask_mismatches(tensors, random_order)


def test_stage2_step_reproduces_release_targets_outputs_losses_and_gradients(stage2_run):
    model, out, tensors, meta = stage2_run
    assert step_mismatches(model, out, tensors, meta) == {}
    assert not any(p.grad is not None for p in model.teacher.parameters())


def test_broken_loss_over_one_view_is_caught():
    """Summing only the first view's loss (the second view dropped) must fail the comparison."""

    def first_view_only(model):
        head_loss, calls = model.head.loss, []

        def drop_later_views(z, target):
            calls.append(1)
            losses = head_loss(z, target)
            return losses if len(calls) == 1 else dict(loss_latent=0.0 * losses['loss_latent'])

        model.head.loss = drop_later_views

    model, out, tensors, meta = run_stage2(first_view_only)
    del model.head.loss
    bad = step_mismatches(model, out, tensors, meta)
    assert 'loss' in bad and 'grad.selfdist_decoder.head.0.weight' in bad, bad


def test_broken_teacher_targets_are_caught():
    """Targets from the student instead of the frozen teacher must fail the comparison."""

    def student_targets(model):
        def from_student(clips):
            with torch.no_grad():
                final, _ = model.backbone.forward_tokens(clips)
            return torch.nn.functional.normalize(final[:, model.backbone.num_cls_tokens:], dim=-1)

        model.teacher_targets = from_student

    model, out, tensors, meta = run_stage2(student_targets)
    bad = step_mismatches(model, out, tensors, meta)
    assert 'teacher_targets' in bad and 'loss' in bad, bad


def test_no_weight_decay_sets_match_release():
    tool = _tool()
    _, meta = _load_fixture()
    w = tool.WIDTHS['tiny']
    model = tool.build_ivnext_stage2(w)
    names = tool.ivnext_no_decay_names(model, osp.join(ROOT, tool.IVNEXT_CONFIGS['stage2']))
    assert sorted(stage2_release_name(n)[1] for n in names) == meta['no_decay']['stage2']
    from ivnext.convert.release_training import stage1_release_name
    model1 = tool.stage1_tool.build_ivnext_stage1(w)
    names1 = tool.ivnext_no_decay_names(model1, osp.join(ROOT, tool.IVNEXT_CONFIGS['stage1']))
    assert sorted(stage1_release_name(n) for n in names1 if stage1_release_name(n)) == meta['no_decay']['stage1']
    # The release decays its predictor's position table and mask token.
    assert 'diff_pos_embed' not in meta['no_decay']['stage2'] and 'bert_mask_token' not in meta['no_decay']['stage2']


@pytest.mark.parametrize('script', ['stage1', 'stage2'])
def test_learning_rate_every_iteration_matches_release(script):
    tool = _tool()
    _, meta = _load_fixture()
    ref = meta['lr'][script]
    epochs = len(ref['release']) // ref['iters_per_epoch']
    lrs, _ = tool.ivnext_schedule(osp.join(ROOT, tool.IVNEXT_CONFIGS[script]), epochs, ref['iters_per_epoch'],
                                  ref['world_batch'])
    ours, theirs = torch.tensor(lrs, dtype=torch.float64), torch.tensor(ref['release'], dtype=torch.float64)
    assert ((ours - theirs).abs().max() / theirs.abs().max()).item() <= LR_TOLERANCE
    if script == 'stage1':
        assert lrs[0] == 0.0  # the release's warm-up starts at 0


def test_key_map_round_trip():
    tool = _tool()
    model = tool.build_ivnext_stage2(tool.WIDTHS['tiny'])
    params = {n: p.detach() for n, p in model.named_parameters()}
    student, teacher = stage2_to_release(params)
    assert 'selfdist_decoder.head.0.weight' in student and 'blocks.0.attn.qkv.weight' in teacher
    back = stage2_from_release(student, teacher, list(params))
    assert set(back) == set(params)
    for name, value in back.items():
        assert torch.equal(value, params[name]), name


def run_pos_table_step(interpolate=None):
    """ivnext's step with the fixture's half-frame position tables (``pos_embed_frames``) at twice the frames.

    ``interpolate(table, src_grid, dst_grid)`` replaces the encoder's per-forward table interpolation when given.
    """
    from safetensors.torch import load_file
    tool = _tool()
    stem = osp.join(FIXTURES, 'stage2_tiny_pos_table')
    tensors = load_file(stem + '.safetensors')
    with open(stem + '.json') as f:
        meta = json.load(f)
    w = dict(tool.WIDTHS['tiny'], frames=meta['shapes']['frames'])
    torch.manual_seed(0)
    model = tool.build_ivnext_stage2(w, meta['table_frames'])
    if interpolate is not None:
        backbone = model.backbone
        backbone.patch_pos_embed = lambda grid: interpolate(backbone.pos_embed[:, backbone.num_cls_tokens:],
                                                            backbone.pos_grid, grid)
    draws = dict(clip=1.5 * tool.deterministic_values('clip', (w['batch'], 3, w['frames'], w['img_size'],
                                                                  w['img_size'])))
    for view in range(len(tool.VIEWS)):
        draws[f'mask_v{view}'] = tensors[f'draw.mask_v{view}'].bool()
    out = tool.run_ivnext_stage2(model, draws)
    bad = {}
    checks = {'teacher_targets': (out['teacher_targets'], tensors['release.teacher_targets'])}
    for view in range(len(tool.VIEWS)):
        for name in ('encoder', 'head'):
            checks[f'{name}_v{view}'] = (out[f'{name}_v{view}'], tensors[f'release.{name}_v{view}'])
    for name, (ours, ref) in checks.items():
        if ours.shape != ref.shape or _relative(ours, ref) > TOLERANCE:
            bad[name] = _relative(ours, ref) if ours.shape == ref.shape else 'shape'
    for name, ref in meta['losses'].items():
        if abs(out[name].item() - ref) / abs(ref) > TOLERANCE:
            bad[name] = abs(out[name].item() - ref) / abs(ref)
    grads, _ = stage2_to_release({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    for name in ('pos_embed', 'diff_pos_embed'):
        ref = tensors[f'grad.{name}']
        if grads[name].shape != ref.shape or _norm_relative(grads[name], ref) > GRAD_TOLERANCE:
            bad[f'grad.{name}'] = _norm_relative(grads[name], ref) if grads[name].shape == ref.shape else 'shape'
    return model, meta, bad


def test_position_tables_at_half_the_frames_match_release_interpolation_in_every_forward():
    """The release's 16-frame tables at 32 frames, in small: tables at 2 frames, clips of 4, both sides."""
    model, meta, bad = run_pos_table_step()
    assert bad == {}
    assert len(meta['release_commit']) == 40
    table_rows = meta['table_frames'] * (meta['shapes']['img_size'] // 14) ** 2
    assert model.backbone.pos_embed.shape[1] == model.neck.pos_embed.shape[1] == 4 + table_rows


def test_broken_table_interpolation_is_caught():
    """Interpolating in time with align_corners=True (not the release's) must fail the comparison."""
    import torch.nn.functional as F

    def corners_aligned(table, src_grid, dst_grid):
        volume = table[0].reshape(*src_grid, -1).permute(3, 0, 1, 2).unsqueeze(0)
        volume = F.interpolate(volume, size=tuple(dst_grid), mode='trilinear', align_corners=True)
        return volume[0].permute(1, 2, 3, 0).reshape(1, -1, table.shape[-1])

    _, _, bad = run_pos_table_step(corners_aligned)
    assert 'encoder_v0' in bad and 'grad.pos_embed' in bad, bad

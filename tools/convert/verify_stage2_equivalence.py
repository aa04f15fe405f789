"""Check ivnext's Stage-2 training step and optimiser settings against the authors' training code.

Stage 2 (``InternVideo-Next/models/InternVideo_next_s2.py``, ``engines/engine_for_stage2.py``,
``engines/jepa_mask.py`` of a local checkout, run on the CPU stand-ins of ``release_standins.py``):

* **multi-block masks**: the release's ``MaskCollator`` draws the blocks (its own random numbers); ivnext's
  ``MultiBlockMasker3D.mask_from_blocks`` turns the same boxes into a mask (union, context equalised to the batch
  minimum, the ``400 * T / 8`` cap, earliest tokens in raster order): compared bitwise on every draw. The two
  maskers' own draws are compared over many batches: a chi-square homogeneity test on the kept-context count and
  two-proportion z-tests on every token's context frequency (Bonferroni over tokens);
* **one training step**: ivnext's ``InternVideoNextStage2`` gets reproducible weights
  (:func:`ivnext.convert.release_training.fill_deterministic`; the teacher's differ from the student's, so a
  target taken from the wrong encoder shows), copied to the release's student and teacher with the key map of
  :mod:`ivnext.convert.release_training_stage2`; both see the same clip and the same two masks. Compared: the
  frozen teacher's targets, the student encoder and predictor per view, the latent head's outputs, the loss of
  each view and their sum (the release's engine: ``2 - 2 <s, t>`` per view, summed), and the gradient of every
  shared parameter after one backward.
* **position tables kept at fewer frames**: the release builds the Stage-2 model at 16 frames and interpolates
  ``pos_embed`` / ``diff_pos_embed`` linearly in time to the 32-frame clips in every forward (``expand_pos_embed``,
  which moves the result with ``.cuda()``: run here under ``release_standins.cuda_is_identity``). The same step is
  compared with tables at the tiny width's frame count and clips of twice as many frames, against ivnext with
  ``backbone.pos_embed_frames`` set; the stored tables' gradients get rows of their own.

Optimisation (``optim_factory.get_parameter_groups``, ``utils.cosine_scheduler`` and the settings of
``exp/base/pretrain/stage{1,2}.sh``): the parameters without weight decay, by name after the key map, and the
learning rate at every iteration of the first epochs, against the optimiser wrapper and parameter schedulers
that ivnext's shipped release configs build with MMEngine.

``--fixture DIR`` writes golden fixtures (numbers only) that ``tests/test_release_stage2_equivalence.py`` checks
ivnext against without the authors' code. The release side needs transformers 4.x; run it with ``.venv``.

Example::

    python tools/convert/verify_stage2_equivalence.py /path/to/InternVideo/InternVideo-Next --width tiny --width base
"""
import argparse
import contextlib
import copy
import importlib.util
import io
import json
import math
import os
import os.path as osp
import sys
import types
from typing import Dict, List, Optional, Sequence, Tuple

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import release_standins  # noqa: E402
import verify_training_equivalence as stage1_tool  # noqa: E402

from ivnext.convert.release_training import deterministic_values, fill_deterministic  # noqa: E402
from ivnext.convert.release_training_stage2 import RELEASE_ONLY_PREFIXES, stage2_to_release  # noqa: E402

PATCH, NUM_CLS = stage1_tool.PATCH, stage1_tool.NUM_CLS
# Stage-2 shapes: the Stage-1 tool's, with two clips at ViT-B so that the batch-minimum equalisation acts.
WIDTHS = {name: dict(w) for name, w in stage1_tool.WIDTHS.items()}
WIDTHS['base']['batch'] = 2
# The release's two Stage-2 views (engines/jepa_mask.py, get_jepa_mask_collator).
VIEWS = [dict(num_blocks=8, spatial_scale=(0.15, 0.15), aspect_ratio=(0.75, 1.5), temporal_scale=(1.0, 1.0)),
         dict(num_blocks=2, spatial_scale=(0.7, 0.7), aspect_ratio=(0.75, 1.5), temporal_scale=(1.0, 1.0))]
# The release caps the context at int(400 * T / 8) tokens on its fixed 16 x 16 grid (224 px, patch 14):
# ivnext states it as a fraction of the grid, 400 / (8 * 16 * 16).
CONTEXT_RATIO = 400 / 2048


def release_max_keep(grid: Sequence[int]) -> int:
    """The release's cap for this grid: ``int(400 * T / 8)`` on 16 x 16; the same fraction on other grids."""
    t, h, w = grid
    if (h, w) == (16, 16):
        return int(400 * (t / 8))
    return max(1, int(CONTEXT_RATIO * t * h * w))


# ------------------------------------------------------------------------------------------------ masks
def import_jepa_mask(release_dir: str) -> types.ModuleType:
    """The release's ``engines/jepa_mask.py`` (plain PyTorch; imported without its package)."""
    path = osp.join(release_dir, 'engines', 'jepa_mask.py')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} not found; pass the InternVideo-Next folder of the authors\' repository')
    spec = importlib.util.spec_from_file_location('release_jepa_mask', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ReleaseMasks:
    """The release's ``MaskCollator`` for the two Stage-2 views on ``grid``, recording the boxes it draws.

    Each box is read back from the single-block mask ``_sample_block_mask`` returns (zeros inside the box; the
    release's ``max_temporal_keep=1.0`` adds none), so the release's own draws (block size from a generator seeded
    with its step counter, positions from the global generator, redraws of samples left without context) stay
    untouched.
    """

    def __init__(self, release_dir: str, grid: Sequence[int], max_keep: Optional[int] = None):
        jepa = import_jepa_mask(release_dir)
        t, h, w = grid
        keep = release_max_keep(grid) if max_keep is None else max_keep
        cfgs = [dict(v, num_blocks=v['num_blocks'], max_temporal_keep=1.0, max_keep=keep) for v in VIEWS]
        self.grid = tuple(grid)
        self.max_keep = keep
        self.collator = jepa.MaskCollator(cfgs, crop_size=(h * PATCH, w * PATCH), num_frames=t,
                                          patch_size=(PATCH, PATCH), tubelet_size=1)
        self.logs: List[List[torch.Tensor]] = []
        for gen in self.collator.mask_generators:
            self.logs.append(self._record(gen))

    @staticmethod
    def _record(gen) -> List[torch.Tensor]:
        log: List[torch.Tensor] = []
        original = gen._sample_block_mask

        def recording(b_size):
            m = original(b_size)
            inside = (m == 0).nonzero()
            log.append(torch.cat([inside.min(0).values, inside.max(0).values + 1]))
            return m

        gen._sample_block_mask = recording
        return log

    def __call__(self, batch_size: int, view: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """One call of the release's collator for ``view``.

        Returns:
            tuple: masks (B, N) bool (True = masked, the release's ``mask_generator(...).bool()``) and the boxes
            of the accepted draws (B, K, 6) long ``[t0, h0, w0, t1, h1, w1)``.
        """
        log = self.logs[view]
        log.clear()
        with contextlib.redirect_stdout(io.StringIO()):  # the collator prints its context size
            masks = self.collator(batch_size=batch_size, random_index=view).bool()
        k = VIEWS[view]['num_blocks']
        attempts = torch.stack(log).view(-1, k, 6)
        from ivnext.models.maskers import MultiBlockMasker3D
        union = MultiBlockMasker3D.blocks_to_union(attempts, self.grid)
        accepted = attempts[~union.all(1)]  # the release redraws a sample whose boxes leave no context
        if accepted.shape[0] != batch_size:
            raise RuntimeError(f'recorded {accepted.shape[0]} accepted draws for a batch of {batch_size}')
        return masks, accepted


def ivnext_masker(view: int, grid: Sequence[int], max_keep: Optional[int] = None):
    """ivnext's masker for ``view`` as the shipped Stage-2 configs build it (cap as a fraction of the grid)."""
    from ivnext.models.maskers import MultiBlockMasker3D
    if max_keep is None or max_keep == release_max_keep(grid):
        return MultiBlockMasker3D(**VIEWS[view], max_context_ratio=CONTEXT_RATIO, context_order='raster')
    return MultiBlockMasker3D(**VIEWS[view], max_context_tokens=max_keep, context_order='raster')


def compare_masks_bitwise(release: ReleaseMasks, batch_size: int, draws: int) -> dict:
    """The release's masks against ivnext's ``mask_from_blocks`` on the same boxes, ``draws`` calls per view."""
    out = {}
    for view in range(len(VIEWS)):
        masker = ivnext_masker(view, release.grid, release.max_keep)
        differing, capped, tokens = 0, 0, 0
        for _ in range(draws):
            ref, blocks = release(batch_size, view)
            ours = masker.mask_from_blocks(blocks, release.grid).mask
            differing += int((ours != ref).any(1).sum())
            kept = int((~ref[0]).sum())
            capped += int(kept == release.max_keep)
            tokens += kept
        out[view] = dict(masks=draws * batch_size, differing=differing, capped_batches=capped,
                         mean_context=tokens / draws)
    return out


def _chi2_homogeneity(a: torch.Tensor, b: torch.Tensor) -> Tuple[float, float, int]:
    """Chi-square test that two samples of integers come from one distribution (bins with < 10 pooled)."""
    from scipy.stats import chi2_contingency
    values = torch.cat([a, b]).unique()
    counts = torch.stack([(a[:, None] == values).sum(0), (b[:, None] == values).sum(0)]).double()
    big = counts.sum(0) >= 10
    table = torch.cat([counts[:, big], counts[:, ~big].sum(1, keepdim=True)], 1)
    table = table[:, table.sum(0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0, 0
    stat, p, dof, _ = chi2_contingency(table.numpy())
    return float(stat), float(p), int(dof)


def _bonferroni_token_test(a: torch.Tensor, b: torch.Tensor) -> Tuple[float, float]:
    """Two-proportion z-test per token on context frequencies; Bonferroni-corrected smallest p-value."""
    from scipy.stats import norm
    n_a, n_b = a.shape[0], b.shape[0]
    pa, pb = a.double().mean(0), b.double().mean(0)
    pooled = (a.double().sum(0) + b.double().sum(0)) / (n_a + n_b)
    se = (pooled * (1 - pooled) * (1 / n_a + 1 / n_b)).sqrt()
    z = torch.where(se > 0, (pa - pb) / se.clamp_min(1e-300), torch.zeros_like(se))
    p = 2 * norm.sf(z.abs().numpy())
    return float(z.abs().max()), float(min(1.0, p.min() * a.shape[1]))


def compare_mask_statistics(release: ReleaseMasks, batch_size: int, draws: int, seed: int = 0) -> dict:
    """Each side's own draws, ``draws`` batches per view: context-count and per-token frequency tests.

    The unit is one batch (the batch shares the block size and the equalised count); the per-token test uses the
    first sample of each batch, so its samples are independent.
    """
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for view in range(len(VIEWS)):
        masker = ivnext_masker(view, release.grid, release.max_keep)
        ref_counts, our_counts, ref_first, our_first = [], [], [], []
        for _ in range(draws):
            ref, _ = release(batch_size, view)
            ours = masker.sample(batch_size, release.grid, generator=gen).mask
            ref_counts.append(int((~ref[0]).sum()))
            our_counts.append(int((~ours[0]).sum()))
            ref_first.append(~ref[0])
            our_first.append(~ours[0])
        stat, p_count, dof = _chi2_homogeneity(torch.tensor(ref_counts), torch.tensor(our_counts))
        z_max, p_token = _bonferroni_token_test(torch.stack(ref_first), torch.stack(our_first))
        out[view] = dict(batches=draws, batch_size=batch_size, chi2=stat, dof=dof, p_context_count=p_count,
                         max_abs_z=z_max, p_token_frequency_bonferroni=p_token,
                         mean_context_release=sum(ref_counts) / draws, mean_context_ivnext=sum(our_counts) / draws)
    return out


# ------------------------------------------------------------------------------------------------- models
def build_release_stage2(release_dir: str, w: dict,
                         table_frames: Optional[int] = None) -> Tuple[torch.nn.Module, torch.nn.Module]:
    """The authors' Stage-2 student and (deep-copied, frozen) teacher at shapes ``w``, plain PyTorch paths.

    ``table_frames``: build the model at that many frames (as ``get_model`` builds it at 16 for 32-frame clips),
    so its position tables are interpolated in time to ``w['frames']`` in every forward.
    """
    module = release_standins.import_release_file(release_dir, 'InternVideo_next_s2.py')
    import transformers
    from ivnext.models.necks.modernbert_predictor import MODERNBERT_LARGE
    original = transformers.ModernBertForMaskedLM.from_pretrained

    def from_config(cls, name, **kwargs):  # stand-in for the download: ModernBERT-Large's config, fp32, random
        config = transformers.ModernBertConfig(**dict(MODERNBERT_LARGE, intermediate_size=w['bert_intermediate']))
        return cls(config)

    transformers.ModernBertForMaskedLM.from_pretrained = classmethod(from_config)
    try:
        student = module.InternVideo2(
            img_size=w['img_size'], patch_size=PATCH, embed_dim=w['embed_dim'], depth=w['depth'],
            num_heads=w['num_heads'], mlp_ratio=w['mlp_ratio'], num_frames=table_frames or w['frames'],
            use_flash_attn=False, use_fused_rmsnorm=False, use_fused_mlp=False, drop_path_rate=0.0,
            attn_pool_num_heads=w['pool_heads'], clip_embed_dim=w['clip_embed_dim'], cls_token_num=NUM_CLS)
    finally:
        transformers.ModernBertForMaskedLM.from_pretrained = original
    release_standins.use_varlen_standin(student.bert_decoder)
    teacher = copy.deepcopy(student)  # main_stage2.py: target_encoder = copy.deepcopy(model_without_ddp)
    for p in teacher.parameters():
        p.requires_grad = False
    return student, teacher


def stage2_config(w: dict, grid: Sequence[int], table_frames: Optional[int] = None) -> dict:
    """ivnext's Stage-2 model config at shapes ``w`` (the shipped ViT-B config's structure); ``table_frames`` is
    the encoder's ``pos_embed_frames`` (the predictor's table follows it)."""
    s1 = stage1_tool.stage1_config(w)
    maskers = []
    for view in range(len(VIEWS)):
        m = ivnext_masker(view, grid)
        maskers.append(dict(type='MultiBlockMasker3D', **VIEWS[view], max_context_ratio=m.max_context_ratio,
                            max_context_tokens=m.max_context_tokens, context_order='raster'))
    return dict(type='InternVideoNextStage2', backbone=dict(s1['backbone'], pos_embed_frames=table_frames),
                neck=s1['neck'],
                head=dict(type='LatentRegressionHead', in_dims=1024, target_dims=w['embed_dim']), maskers=maskers)


def grid_of(w: dict) -> Tuple[int, int, int]:
    return w['frames'], w['img_size'] // PATCH, w['img_size'] // PATCH


def build_ivnext_stage2(w: dict, table_frames: Optional[int] = None) -> torch.nn.Module:
    """ivnext's Stage-2 model, every parameter (teacher included) from :func:`fill_deterministic`."""
    from mmaction.registry import MODELS
    from mmaction.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    model = MODELS.build(stage2_config(w, grid_of(w), table_frames))
    fill_deterministic(model)
    return model


def stage2_draws(release_dir: str, w: dict, seed: int = 0) -> Dict[str, torch.Tensor]:
    """The clip and two views' masks drawn by the release's collator (with their boxes)."""
    torch.manual_seed(seed)
    b, t, s = w['batch'], w['frames'], w['img_size']
    release = ReleaseMasks(release_dir, grid_of(w))
    draws = dict(clip=1.5 * deterministic_values('clip', (b, 3, t, s, s)))
    for view in range(len(VIEWS)):
        draws[f'mask_v{view}'], draws[f'blocks_v{view}'] = release(b, view)
    return draws


def run_release_stage2(student, teacher, draws) -> Dict[str, torch.Tensor]:
    """One release Stage-2 step (``engine_for_stage2.train_one_epoch``'s maths, fp32) with the given masks."""
    captured: Dict[str, list] = dict(encoder=[], predictor=[])
    hooks = [student.blocks[-1].register_forward_hook(lambda m, i, o: captured['encoder'].append(o.detach())),
             student.bert_decoder.layers[-1].register_forward_hook(
                 lambda m, i, o: captured['predictor'].append(o[0].detach()))]
    student.train()
    student.zero_grad()
    clip = draws['clip']
    b = clip.shape[0]
    with torch.no_grad():
        middle, _ = teacher(clip, embed_only=True)
    c = middle.shape[-1]
    out: Dict[str, torch.Tensor] = dict(teacher_targets=middle / middle.norm(dim=-1, keepdim=True))
    loss = 0.0
    for view in range(len(VIEWS)):
        mask = draws[f'mask_v{view}']
        pred, _ = student(clip, mask=mask)
        target = middle[mask].reshape(b, -1, c)
        target = target / target.norm(dim=-1, keepdim=True)
        view_loss = (2 - 2 * (pred * target).sum(dim=-1)).mean()
        out[f'head_v{view}'] = pred.detach()
        out[f'loss_v{view}'] = view_loss.detach()
        loss = loss + view_loss
    loss.backward()
    for hook in hooks:
        hook.remove()
    for view in range(len(VIEWS)):
        out[f'encoder_v{view}'] = captured['encoder'][view]
        out[f'predictor_v{view}'] = captured['predictor'][view].view(b, -1, captured['predictor'][view].shape[-1])
    out['loss'] = loss.detach()
    return out


def run_ivnext_stage2(model, draws) -> Dict[str, torch.Tensor]:
    """One ivnext Stage-2 step (``model.loss``) with the same masks; runs backward."""
    from ivnext.models.maskers.token_mask import TokenMask
    captured: Dict[str, list] = dict(encoder=[], predictor=[], head=[])
    for view, masker in enumerate(model.maskers):
        token_mask = TokenMask.from_mask(draws[f'mask_v{view}'])
        masker.sample = (lambda m: lambda *args, **kwargs: m)(token_mask)
    teacher_targets = model.teacher_targets

    def targets_capture(clips):
        targets = teacher_targets(clips)
        captured['teacher_targets'] = targets.detach()
        return targets

    model.teacher_targets = targets_capture
    forward_tokens = model.backbone.forward_tokens

    def forward_tokens_capture(*args, **kwargs):
        final, hidden = forward_tokens(*args, **kwargs)
        captured['encoder'].append(final.detach())
        return final, hidden

    model.backbone.forward_tokens = forward_tokens_capture
    hooks = [model.neck.register_forward_hook(lambda m, i, o: captured['predictor'].append(o.detach())),
             model.head.register_forward_hook(lambda m, i, o: captured['head'].append(o.detach()))]
    model.train()
    model.zero_grad()
    try:
        losses = model.loss(draws['clip'])
    finally:
        for hook in hooks:
            hook.remove()
        del model.teacher_targets, model.backbone.forward_tokens
        for masker in model.maskers:
            del masker.sample
    losses['loss_latent'].backward()
    out = dict(teacher_targets=captured['teacher_targets'], loss=losses['loss_latent'].detach())
    for view in range(len(VIEWS)):
        out[f'encoder_v{view}'] = captured['encoder'][view]
        out[f'predictor_v{view}'] = captured['predictor'][view]
        out[f'head_v{view}'] = captured['head'][view]
        out[f'loss_v{view}'] = losses[f'view{view}_latent']
    return out


STAGE2_COMPONENTS = ['teacher_targets', 'encoder_v0', 'predictor_v0', 'head_v0', 'loss_v0', 'encoder_v1',
                     'predictor_v1', 'head_v1', 'loss_v1', 'loss']


def stage2_gradients(ours: torch.nn.Module, theirs: torch.nn.Module) -> Dict[str, tuple]:
    """ivnext's gradients in the release's names, paired with the release student's; checks the sets agree."""
    grads = {name: p.grad for name, p in ours.named_parameters() if p.grad is not None}
    mapped, teacher = stage2_to_release(grads)
    if teacher:
        raise RuntimeError(f'the frozen teacher received gradients: {sorted(teacher)[:5]}')
    theirs_grads = {name: p.grad for name, p in theirs.named_parameters() if p.grad is not None}
    only_release = sorted(set(theirs_grads) - set(mapped))
    only_ours = sorted(set(mapped) - set(theirs_grads))
    if only_release or only_ours:
        raise RuntimeError(f'parameters with a gradient on one side only: release {only_release}, ivnext {only_ours}')
    return {name: (grad, theirs_grads[name]) for name, grad in mapped.items()}


def compare_stage2(release_dir: str, width: str, seed: int = 0, table_frames: Optional[int] = None) -> dict:
    """One Stage-2 step on both sides; per-component differences, the masks' bitwise check and raw outputs.

    ``table_frames``: both sides keep their position tables at that many frames and run clips of twice as many
    (the release's 16-frame tables in 32-frame Stage 2), interpolating them in every forward; the stored tables'
    gradients get rows of their own.
    """
    torch.manual_seed(seed)
    w = dict(WIDTHS[width])
    if table_frames is not None:
        w['frames'] = 2 * table_frames
    ours = build_ivnext_stage2(w, table_frames)
    student, teacher = build_release_stage2(release_dir, w, table_frames)
    # The frozen teacher is left out of ivnext's state dict (never saved): map the parameters themselves.
    params = {name: p.detach() for name, p in ours.named_parameters()}
    state_student, state_teacher = stage2_to_release(params)
    for name, module, state in (('student', student, state_student), ('teacher', teacher, state_teacher)):
        missing, unexpected = module.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith(RELEASE_ONLY_PREFIXES)]
        if name == 'teacher':  # the release's teacher copy keeps a predictor and decoders that never run
            missing = [k for k in missing if k.startswith(('patch_embed', 'cls_token', 'pos_embed', 'blocks'))]
        if missing or list(unexpected):
            raise RuntimeError(f'{name} key map incomplete: not filled {missing}, unknown {list(unexpected)}')
    draws = stage2_draws(release_dir, w, seed)
    with release_standins.cuda_is_identity():  # expand_pos_embed moves its result with .cuda()
        ref = run_release_stage2(student, teacher, draws)
    out = run_ivnext_stage2(ours, draws)
    rows = {}
    grid = grid_of(w)
    for view in range(len(VIEWS)):
        mask = ivnext_masker(view, grid).mask_from_blocks(draws[f'blocks_v{view}'], grid).mask
        rows[f'mask_v{view} (from the same boxes, bitwise)'] = dict(
            max_abs=float((mask != draws[f'mask_v{view}']).sum()), rel=float((mask != draws[f'mask_v{view}']).any()))
    rows.update({name: stage1_tool.difference(out[name], ref[name]) for name in STAGE2_COMPONENTS})
    pairs = stage2_gradients(ours, student)
    rows['gradients (all shared)'] = stage1_tool.difference(torch.cat([g.flatten() for g, _ in pairs.values()]),
                                                            torch.cat([r.flatten() for _, r in pairs.values()]))
    norms = {name: ref_grad.norm().item() for name, (_, ref_grad) in pairs.items()}
    floor = 1e-3 * max(norms.values())

    def tensor_rel(name: str) -> float:
        grad, ref_grad = pairs[name]
        return (grad - ref_grad).norm().item() / max(norms[name], floor)

    worst = max(pairs, key=tensor_rel)
    rows[f'gradient, worst tensor, norm-relative ({worst})'] = dict(
        max_abs=(pairs[worst][0] - pairs[worst][1]).abs().max().item(), rel=tensor_rel(worst))
    if table_frames is not None:
        for name in ('pos_embed', 'diff_pos_embed'):
            rows[f'gradient of the stored {name} {tuple(pairs[name][1].shape)}, norm-relative'] = dict(
                max_abs=(pairs[name][0] - pairs[name][1]).abs().max().item(), rel=tensor_rel(name))
        rows.update(compare_time_interpolation(ours.backbone, student, grid))
    return dict(rows=rows, ours=ours, student=student, draws=draws, ref=ref, out=out, pairs=pairs,
                num_shared_gradients=len(pairs))


def compare_time_interpolation(encoder: torch.nn.Module, student: torch.nn.Module,
                               grid: Sequence[int]) -> Dict[str, Dict[str, float]]:
    """The table interpolation alone: ivnext's ``patch_pos_embed`` against the release's ``expand_pos_embed``.

    Both get the same stored table (O(1) values, unlike the small gradients a step gives the tables) and, for the
    backward, the same cotangent; compared: the interpolated patch rows and the gradient of the stored rows.

    Args:
        encoder: ivnext's encoder with ``pos_embed_frames`` set.
        student: The release's model built at the table's frames.
        grid: Clip token grid (T', H', W').

    Returns:
        dict: rows ``{name: dict(max_abs, rel)}`` (relative to the largest reference value).
    """
    encoder = copy.deepcopy(encoder)
    num_cls, rows_out = encoder.num_cls_tokens, grid[0] * grid[1] * grid[2]
    table = deterministic_values('interpolated.pos_embed', tuple(student.pos_embed.shape)) * 10
    cotangent = deterministic_values('interpolated.cotangent', (1, rows_out, table.shape[-1]))
    theirs_table = table.clone().requires_grad_(True)
    with release_standins.cuda_is_identity():  # expand_pos_embed: interpolate(...cpu()).cuda()
        theirs = student.expand_pos_embed(theirs_table, grid[0], grid[1] * grid[2])[:, num_cls:]
    (theirs * cotangent).sum().backward()
    with torch.no_grad():
        encoder.pos_embed.copy_(table)
    encoder.pos_embed.grad = None
    ours = encoder.patch_pos_embed(tuple(grid))
    (ours * cotangent).sum().backward()
    return {f'time interpolation alone: table rows {tuple(table.shape)} -> {rows_out} patch rows':
            stage1_tool.difference(ours.detach(), theirs.detach()),
            'time interpolation alone: gradient of the stored rows':
            stage1_tool.difference(encoder.pos_embed.grad, theirs_table.grad)}


# ------------------------------------------------------------------------------------------- optimisation
def release_schedule(script: str, epochs_shown: int, iters_per_epoch: int, world_batch: int) -> List[float]:
    """The release's per-iteration learning rate (``utils.cosine_scheduler`` with ``main_stage*.py``'s scaling).

    Args:
        script: ``'stage1'`` or ``'stage2'`` (the settings of ``exp/base/pretrain/<script>.sh``).
        epochs_shown: Epochs whose iterations are returned.
        iters_per_epoch: Iterations per epoch.
        world_batch: Total batch (GPUs x batch per GPU), which scales lr and min_lr by ``world_batch / 256``.
    """
    import numpy as np
    settings = RELEASE_SCRIPTS[script]
    scale = world_batch / 256
    base, final = settings['lr'] * scale, settings['min_lr'] * scale
    epochs, warmup_epochs = settings['epochs'], settings['warmup_epochs']
    warmup_iters = warmup_epochs * iters_per_epoch
    warmup = np.linspace(0, base, warmup_iters) if warmup_epochs > 0 else np.array([])
    iters = np.arange(epochs * iters_per_epoch - warmup_iters)
    cosine = np.array([final + 0.5 * (base - final) * (1 + math.cos(math.pi * i / len(iters))) for i in iters])
    return np.concatenate((warmup, cosine))[:epochs_shown * iters_per_epoch].tolist()


# exp/base/pretrain/stage{1,2}.sh and main_stage*.py defaults (min_lr 1e-5; weight decay constant).
RELEASE_SCRIPTS = dict(stage1=dict(lr=1e-3, min_lr=1e-5, epochs=62, warmup_epochs=7, batch_per_gpu=16, gpus=128),
                       stage2=dict(lr=1e-4, min_lr=1e-5, epochs=101, warmup_epochs=0, batch_per_gpu=14, gpus=128))
IVNEXT_CONFIGS = dict(stage1='configs/pretrain/ivnext-stage1-release_vit-b-p14_siglip2_16x224_62e_kmash.py',
                      stage2='configs/pretrain/ivnext-stage2-release_vit-b-p14_32x224_101e_kmash.py')


def ivnext_schedule(config_path: str, epochs_shown: int, iters_per_epoch: int, world_batch: int,
                    model: Optional[torch.nn.Module] = None) -> Tuple[List[float], torch.optim.Optimizer]:
    """The learning rate MMEngine gives iteration by iteration under an ivnext config.

    Builds the config's optimiser wrapper (on ``model``, or on one parameter) and its ``param_scheduler`` exactly
    as the runner does (``auto_scale_lr`` applied for ``world_batch``, epoch-based schedulers converted to
    iterations with ``iters_per_epoch``), then steps them like the training loop: read lr, step the iteration
    schedulers.
    """
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmaction.registry import PARAM_SCHEDULERS  # ivnext's schedulers, then MMEngine's
    cfg = Config.fromfile(config_path)
    if model is None:
        model = torch.nn.Linear(2, 2)
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    optim_cfg['type'] = 'OptimWrapper'  # fp32 here; the bf16 wrapper only changes the step's precision
    if cfg.get('auto_scale_lr', {}).get('enable', False):
        optim_cfg['optimizer']['lr'] *= world_batch / cfg.auto_scale_lr.base_batch_size
    wrapper = build_optim_wrapper(model, optim_cfg)
    schedulers = []
    for s in cfg.param_scheduler:
        s = copy.deepcopy(dict(s))
        if s.pop('convert_to_iter_based', False):
            cls = PARAM_SCHEDULERS.get(s.pop('type'))
            schedulers.append(cls.build_iter_from_epoch(wrapper.optimizer, epoch_length=iters_per_epoch, **s))
        else:
            schedulers.append(PARAM_SCHEDULERS.build(dict(s, optimizer=wrapper.optimizer)))
    lrs = []
    for _ in range(epochs_shown * iters_per_epoch):
        lrs.append(wrapper.optimizer.param_groups[0]['lr'])
        for s in schedulers:
            s.step()
    return lrs, wrapper.optimizer


def release_no_decay_names(model: torch.nn.Module) -> List[str]:
    """Names ``optim_factory.get_parameter_groups`` puts in its ``no_decay`` group (the skip list is the model's
    ``no_weight_decay()``; 1-D tensors and biases)."""
    skip = model.no_weight_decay()
    return sorted(n for n, p in model.named_parameters()
                  if p.requires_grad and (p.ndim == 1 or n.endswith('.bias') or n in skip))


def ivnext_no_decay_names(model: torch.nn.Module, config_path: str) -> List[str]:
    """ivnext parameter names whose optimiser group has weight decay 0 under the config's optimiser wrapper."""
    _, optimizer = ivnext_schedule(config_path, 0, 1, 256, model)
    names = {id(p): n for n, p in model.named_parameters()}
    return sorted(names[id(p)] for g in optimizer.param_groups if g['weight_decay'] == 0 for p in g['params'])


def compare_optimisation(release_dir: str, width: str, epochs_shown: int = 3, iters_per_epoch: int = 50) -> dict:
    """No-weight-decay sets (Stage 1 and Stage 2 models, release names) and the first epochs' learning rates."""
    from ivnext.convert.release_training import stage1_release_name
    from ivnext.convert.release_training_stage2 import stage2_release_name
    w = WIDTHS[width]
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    result = dict(no_decay={}, lr={})
    # Stage 2: ivnext's model vs the release's student.
    ours = build_ivnext_stage2(w)
    student, _ = build_release_stage2(release_dir, w)
    ours_nd = ivnext_no_decay_names(ours, osp.join(root, IVNEXT_CONFIGS['stage2']))
    mapped = sorted(stage2_release_name(n)[1] for n in ours_nd if stage2_release_name(n) is not None)
    shared = {stage2_release_name(n)[1] for n, p in ours.named_parameters()
              if p.requires_grad and stage2_release_name(n) is not None}
    theirs_nd = [n for n in release_no_decay_names(student) if n in shared]
    result['no_decay']['stage2'] = dict(release=theirs_nd, ivnext=mapped,
                                        only_release=sorted(set(theirs_nd) - set(mapped)),
                                        only_ivnext=sorted(set(mapped) - set(theirs_nd)))
    # Stage 1: ivnext's model vs the release's Stage-1 module.
    ours1 = stage1_tool.build_ivnext_stage1(w)
    theirs1 = stage1_tool.build_release_stage1(release_dir, w)
    ours_nd1 = ivnext_no_decay_names(ours1, osp.join(root, IVNEXT_CONFIGS['stage1']))
    mapped1 = sorted(stage1_release_name(n) for n in ours_nd1 if stage1_release_name(n) is not None)
    shared1 = {stage1_release_name(n) for n, p in ours1.named_parameters()
               if p.requires_grad and stage1_release_name(n) is not None}
    theirs_nd1 = [n for n in release_no_decay_names(theirs1) if n in shared1]
    result['no_decay']['stage1'] = dict(release=theirs_nd1, ivnext=mapped1,
                                        only_release=sorted(set(theirs_nd1) - set(mapped1)),
                                        only_ivnext=sorted(set(mapped1) - set(theirs_nd1)))
    for script in ('stage1', 'stage2'):
        s = RELEASE_SCRIPTS[script]
        world = s['gpus'] * s['batch_per_gpu']
        epochs = s['warmup_epochs'] + epochs_shown if s['warmup_epochs'] else epochs_shown
        ref = release_schedule(script, epochs, iters_per_epoch, world)
        lrs, _ = ivnext_schedule(osp.join(root, IVNEXT_CONFIGS[script]), epochs, iters_per_epoch, world)
        ref_t, ours_t = torch.tensor(ref, dtype=torch.float64), torch.tensor(lrs, dtype=torch.float64)
        diff = (ours_t - ref_t).abs()
        worst = int(diff.argmax())
        result['lr'][script] = dict(release=ref, ivnext=lrs, iterations=len(ref), iters_per_epoch=iters_per_epoch,
                                    world_batch=world, max_abs=float(diff.max()),
                                    rel=float(diff.max() / ref_t.abs().max()), worst_iteration=worst)
    return result


# ------------------------------------------------------------------------------------------------- fixtures
FIXTURE_GRADIENTS = ['patch_embed.proj.bias', 'blocks.0.attn.qkv.weight', 'blocks.2.ls2.gamma', 'bert_mask_token',
                     'diff_pos_embed', 'to_bert_proj.head.0.weight', 'bert_decoder.layers.0.attn.Wqkv.weight',
                     'bert_decoder.layers.4.mlp.Wo.weight', 'selfdist_decoder.head.0.weight',
                     'selfdist_decoder.head.2.bias', 'selfdist_decoder.norm.weight']


def write_stage2_fixture(result: dict, masks: dict, optim: Optional[dict], folder: str, width: str,
                         commit: Optional[str]) -> List[str]:
    """Write the release's Stage-2 numbers at this width (and mask draws, optimiser numbers) as safetensors + JSON."""
    from safetensors.torch import save_file
    os.makedirs(folder, exist_ok=True)
    tensors = {}
    draws, ref = result['draws'], result['ref']
    for view in range(len(VIEWS)):
        tensors[f'draw.mask_v{view}'] = draws[f'mask_v{view}'].to(torch.uint8).contiguous()
        tensors[f'draw.blocks_v{view}'] = draws[f'blocks_v{view}'].contiguous()
        for name in ('encoder', 'head'):
            tensors[f'release.{name}_v{view}'] = ref[f'{name}_v{view}'].contiguous()
        tensors[f'release.predictor_v{view}_head'] = ref[f'predictor_v{view}'][:, :NUM_CLS + 8, :128].contiguous()
    tensors['release.teacher_targets'] = ref['teacher_targets'].contiguous()
    for name in FIXTURE_GRADIENTS:
        tensors[f'grad.{name}'] = result['pairs'][name][1].flatten()[:256].contiguous()
    for key, value in masks.items():  # release masks on the 224-px grid with the boxes they came from
        tensors[key] = value.contiguous()
    path = osp.join(folder, f'stage2_{width}.safetensors')
    save_file(tensors, path)
    meta = dict(width=width, shapes=WIDTHS[width], release_commit=commit,
                fill='ivnext.convert.release_training.fill_deterministic (teacher included)',
                losses={k: ref[k].item() for k in ('loss', 'loss_v0', 'loss_v1')},
                gradients_kept='first 256 values of each listed release student parameter (release names)',
                views=VIEWS, context_ratio=CONTEXT_RATIO)
    if optim is not None:
        meta['no_decay'] = {k: v['release'] for k, v in optim['no_decay'].items()}
        meta['lr'] = {k: dict(release=v['release'], iters_per_epoch=v['iters_per_epoch'], world_batch=v['world_batch'])
                      for k, v in optim['lr'].items()}
    json_path = osp.join(folder, f'stage2_{width}.json')
    with open(json_path, 'w') as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    return [path, json_path]


def write_table_frames_fixture(result: dict, folder: str, width: str, table_frames: int,
                               commit: Optional[str]) -> List[str]:
    """Write the release's numbers of the step with ``table_frames``-frame position tables run at twice as many
    frames (:func:`compare_stage2` with ``table_frames``): masks, targets, encoder and head outputs, losses, and the
    stored tables' full gradients, as ``stage2_{width}_pos_table.{safetensors,json}``."""
    from safetensors.torch import save_file
    os.makedirs(folder, exist_ok=True)
    draws, ref = result['draws'], result['ref']
    tensors = {'release.teacher_targets': ref['teacher_targets'].contiguous()}
    for view in range(len(VIEWS)):
        tensors[f'draw.mask_v{view}'] = draws[f'mask_v{view}'].to(torch.uint8).contiguous()
        for name in ('encoder', 'head'):
            tensors[f'release.{name}_v{view}'] = ref[f'{name}_v{view}'].contiguous()
    for name in ('pos_embed', 'diff_pos_embed'):
        tensors[f'grad.{name}'] = result['pairs'][name][1].contiguous()
    stem = osp.join(folder, f'stage2_{width}_pos_table')
    save_file(tensors, stem + '.safetensors')
    meta = dict(width=width, shapes=dict(WIDTHS[width], frames=2 * table_frames), table_frames=table_frames,
                release_commit=commit, fill='ivnext.convert.release_training.fill_deterministic (teacher included)',
                losses={k: ref[k].item() for k in ('loss', 'loss_v0', 'loss_v1')},
                gradients_kept='full gradients of the stored position tables (release names)')
    with open(stem + '.json', 'w') as f:
        json.dump(meta, f, indent=1)
    return [stem + '.safetensors', stem + '.json']


def fixture_masks(release_dir: str, grid: Sequence[int], batch: int, draws: int, seed: int = 0) -> dict:
    """A few release draws on ``grid``: masks (uint8) and boxes per view, for the CI bitwise check."""
    torch.manual_seed(seed)
    release = ReleaseMasks(release_dir, grid)
    out = {}
    for view in range(len(VIEWS)):
        ms, bs = zip(*[release(batch, view) for _ in range(draws)])
        out[f'grid_masks.mask_v{view}'] = torch.stack(ms).to(torch.uint8)
        out[f'grid_masks.blocks_v{view}'] = torch.stack(bs)
    return out


# ------------------------------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('release_dir', help="the InternVideo-Next folder of the authors' repository")
    parser.add_argument('--width', action='append', choices=sorted(WIDTHS), help='shapes (repeatable; default tiny)')
    parser.add_argument('--tolerance', type=float, default=1e-5, help='relative difference allowed')
    parser.add_argument('--mask-frames', type=int, nargs='+', default=[4, 32],
                        help='clip lengths of the 224-px mask comparisons')
    parser.add_argument('--mask-draws', type=int, nargs='+', default=[2000, 400],
                        help='batches per view for the mask statistics, one per --mask-frames value (or one for '
                        'all); a tenth of them (at least 100) for the bitwise comparison')
    parser.add_argument('--alpha', type=float, default=0.01, help='significance level of the mask tests')
    parser.add_argument('--fixture', help='folder to write the golden fixture to (tiny width)')
    parser.add_argument('--commit', help="the authors' commit of the checkout (recorded in fixtures)")
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ok = True
    draws = args.mask_draws * len(args.mask_frames) if len(args.mask_draws) == 1 else args.mask_draws
    if len(draws) != len(args.mask_frames):
        parser.error(f'--mask-draws needs one value or one per --mask-frames value ({len(args.mask_frames)}), '
                     f'got {len(args.mask_draws)}')
    for frames, mask_draws in zip(args.mask_frames, draws):
        grid = (frames, 16, 16)
        torch.manual_seed(frames)
        release = ReleaseMasks(args.release_dir, grid)
        batch = 14 if frames == 32 else 4  # 14: the release's batch per GPU
        bitwise = compare_masks_bitwise(release, batch, max(100, mask_draws // 10))
        print(f'\nStage-2 masks on grid {grid}, cap {release.max_keep}: release boxes -> ivnext mask_from_blocks')
        print('| view | masks | differing | batches at the cap | mean context |\n|---|---|---|---|---|')
        for view, r in bitwise.items():
            print(f"| {view} | {r['masks']} | {r['differing']} | {r['capped_batches']} | {r['mean_context']:.1f} |")
            ok &= r['differing'] == 0
        stats = compare_mask_statistics(release, batch, mask_draws, seed=frames)
        print(f'\nStage-2 mask statistics on grid {grid} (each side its own draws, batch {batch})')
        print('| view | batches | context count: chi2 (dof), p | per-token frequency: max |z|, Bonferroni p |'
              ' mean context release / ivnext |\n|---|---|---|---|---|')
        for view, r in stats.items():
            print(f"| {view} | {r['batches']} | {r['chi2']:.1f} ({r['dof']}), {r['p_context_count']:.3f} | "
                  f"{r['max_abs_z']:.2f}, {r['p_token_frequency_bonferroni']:.3f} | "
                  f"{r['mean_context_release']:.1f} / {r['mean_context_ivnext']:.1f} |")
            ok &= r['p_context_count'] > args.alpha and r['p_token_frequency_bonferroni'] > args.alpha
    for width in args.width or ['tiny']:
        result = compare_stage2(args.release_dir, width)
        print(stage1_tool.format_table(f'\nStage 2, width {width} ({result["num_shared_gradients"]} shared '
                                       'parameters with gradients)', result['rows'], args.tolerance))
        ok &= all(d['rel'] <= args.tolerance for d in result['rows'].values())
        table_frames = WIDTHS[width]['frames']
        interp = compare_stage2(args.release_dir, width, table_frames=table_frames)
        print(stage1_tool.format_table(f'\nStage 2, width {width}, {table_frames}-frame position tables run at '
                                       f'{2 * table_frames} frames (interpolated in every forward)',
                                       interp['rows'], args.tolerance))
        ok &= all(d['rel'] <= args.tolerance for d in interp['rows'].values())
        optim = compare_optimisation(args.release_dir, width)
        for stage, nd in optim['no_decay'].items():
            print(f"\nNo weight decay, {stage} ({width}): release {len(nd['release'])}, ivnext {len(nd['ivnext'])}; "
                  f"release only {nd['only_release']}; ivnext only {nd['only_ivnext']}")
            ok &= not nd['only_release'] and not nd['only_ivnext']
        for script, r in optim['lr'].items():
            print(f"Learning rate, {script} ({r['iterations']} iterations, {r['iters_per_epoch']} per epoch, batch "
                  f"{r['world_batch']}): max abs {r['max_abs']:.2e}, relative {r['rel']:.2e} (worst iteration "
                  f"{r['worst_iteration']}: release {r['release'][r['worst_iteration']]:.6e}, ivnext "
                  f"{r['ivnext'][r['worst_iteration']]:.6e})")
            ok &= r['rel'] <= args.tolerance
        if args.fixture and width == 'tiny':
            masks = fixture_masks(args.release_dir, (4, 16, 16), 4, 8)
            paths = write_stage2_fixture(result, masks, optim, args.fixture, width,
                                         args.commit or stage1_tool.release_commit(args.release_dir))
            print('wrote', *paths)
            paths = write_table_frames_fixture(interp, args.fixture, width, table_frames,
                                               args.commit or stage1_tool.release_commit(args.release_dir))
            print('wrote', *paths)
    print('EQUIVALENT' if ok else 'DIFFERENT')
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()

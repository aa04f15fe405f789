"""Check that ivnext's Stage-1 training step reproduces the authors' training code on the same weights and draws.

Builds the authors' Stage-1 module (``InternVideo-Next/models/InternVideo_next_s1.py`` of a local checkout, with
the CPU stand-ins of ``release_standins.py``) and ivnext's ``InternVideoNextStage1`` at the same shapes, gives
ivnext's parameters reproducible values (:func:`ivnext.convert.release_training.fill_deterministic`), copies
them across with the key map of :mod:`ivnext.convert.release_training`, feeds both the same clip, and injects the
same draws where the two codebases draw differently: the visible tokens (per frame, as the release's
semantic-aware masking), the teacher targets (the release computes them outside the model, in its engine), the
diffusion timesteps and noise. Drop-path and dropout are off. The release's loss is assembled as its
``engine_for_stage1.py`` does (``2 - 2 <s, t>`` on the middle layers and on the pooled embedding, plus the
diffusion loss, weights 1 1 1). Every component is reported as max abs and relative (max abs / max |release|)
difference; fp32 throughout.

Before the step, per width: the image teacher (a SigLIP2 of one config, transformers' ``Siglip2VisionModel`` on
ivnext's side, the release's ``models/siglip_teacher.py`` with the same weights: aligned-layer inputs, pooled
embeddings, pooling attention); the semantic-aware mask law (the release's ``torch.multinomial`` against ivnext's
Gumbel-top-k on the teacher's attention and on a peaked map: per-token two-proportion z-tests, and for small
frames chi-square tests against the exact law of sequential sampling without replacement and between the two;
Bonferroni-adjusted p-values), and that the same selections give bitwise the same mask and targets. After it:
DDPM / DDIM sampling from the same noise sequence (the release's ``DiffLoss.sample`` with its ``temperature`` and
classifier-free guidance, and ``ddim_sample_loop``). ``--dtype float64`` runs the step in float64.

``--fixture`` also writes a golden fixture (inputs, injected draws, the release's outputs, losses and a few
gradients; safetensors + JSON, no code) that ``tests/test_release_training_equivalence.py`` checks ivnext against.

The release side needs transformers 4.x (its ModernBERT call signature); run with the project's ``.venv``.

Example::

    python tools/convert/verify_training_equivalence.py /path/to/InternVideo/InternVideo-Next --width tiny
    python tools/convert/verify_training_equivalence.py /path/to/InternVideo/InternVideo-Next --width base
"""
import argparse
import functools
import itertools
import json
import math
import os
import os.path as osp
import sys
import types
from typing import Dict, List, Optional

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import release_standins  # noqa: E402

import ivnext  # noqa: E402,F401  (compat fixes before timm is imported)
from ivnext.convert.release_training import (deterministic_values, fill_deterministic,  # noqa: E402
                                             pixel_permutation, siglip_tower_to_release, stage1_to_release)

# Shapes compared. 'tiny' keeps the release's fixed widths (ModernBERT hidden 1024, 16 heads, 28 layers of which
# the last 5 are kept; 588-dim patches) and shrinks everything else; 'base' is the released ViT-B recipe.
WIDTHS = {
    'tiny': dict(img_size=42, frames=2, batch=2, embed_dim=64, depth=3, num_heads=4, mlp_ratio=2.0, clip_embed_dim=32,
                 pool_heads=4, teacher_dim=32, teacher_final_dim=32, num_align=2, diff_width=640, diff_depth=2,
                 bert_intermediate=64, teacher_layers=4, teacher_heads=2, teacher_mlp=64, teacher_patch=16,
                 mask_draws=200000),
    'base': dict(img_size=224, frames=4, batch=1, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0,
                 clip_embed_dim=768, pool_heads=16, teacher_dim=1536, teacher_final_dim=1536, num_align=6,
                 diff_width=1536, diff_depth=6, bert_intermediate=2624, teacher_layers=8, teacher_heads=16,
                 teacher_mlp=6144, teacher_patch=16, mask_draws=20000),
}
# SigLIP2 teachers: the release's 1B/16 width at ViT-B (1536 wide, 16 heads, MLP 6144, patch 16) with 8 of its 40
# layers, at the student's grid (256 px for 224 px clips); 'tiny' 32 wide, 4 layers. The last num_align layers'
# inputs are aligned (return interval 1).
PATCH = 14
NUM_CLS = 4
BERT_KEPT = 5
MASK_RATIO = 0.75


# ------------------------------------------------------------------------------------------------- builders
def build_release_stage1(release_dir: str, w: dict) -> torch.nn.Module:
    """The authors' Stage-1 ``InternVideo2`` at shapes ``w`` (plain PyTorch paths, no drop-path)."""
    module = release_standins.import_release_file(release_dir, 'InternVideo_next_s1.py')
    import transformers
    original = transformers.ModernBertConfig

    def config_with_width(**kwargs):  # the release spells ModernBERT-Large's config inline
        kwargs['intermediate_size'] = w['bert_intermediate']
        return original(**kwargs)

    transformers.ModernBertConfig = config_with_width
    try:
        model = module.InternVideo2(
            img_size=w['img_size'], patch_size=PATCH, embed_dim=w['embed_dim'], depth=w['depth'],
            num_heads=w['num_heads'], mlp_ratio=w['mlp_ratio'], num_frames=w['frames'], use_flash_attn=False,
            use_fused_rmsnorm=False, use_fused_mlp=False, drop_path_rate=0.0, attn_pool_num_heads=w['pool_heads'],
            clip_embed_dim=w['clip_embed_dim'], clip_teacher_embed_dim=w['teacher_dim'],
            clip_teacher_final_dim=w['teacher_final_dim'], clip_return_layer=w['num_align'],
            clip_student_return_interval=1, diffloss_d=w['diff_depth'], diffloss_w=w['diff_width'],
            diffusion_batch_mul=1, with_text_init=False, cls_token_num=NUM_CLS)
    finally:
        transformers.ModernBertConfig = original
    release_standins.use_varlen_standin(model.bert_decoder)
    return model


def stage1_config(w: dict, local_attention_impl: str = 'dense') -> dict:
    """ivnext's Stage-1 model config at shapes ``w`` (a 2-layer DINOv2 teacher stands in; its targets are injected)."""
    return dict(
        type='InternVideoNextStage1',
        backbone=dict(type='InternVideoNextViT', arch=dict(embed_dims=w['embed_dim'], num_layers=w['depth'],
                                                           num_heads=w['num_heads'], mlp_ratio=w['mlp_ratio']),
                      img_size=w['img_size'], patch_size=PATCH, num_frames=w['frames'], out_type='tokens',
                      use_flash_attn=False, clip_embed_dims=w['clip_embed_dim'], clip_num_heads=w['pool_heads'],
                      drop_path_rate=0.0),
        teacher=dict(type='DINOv2Teacher', num_return_layers=w['num_align'],
                     model_config=dict(hidden_size=32, num_hidden_layers=w['num_align'], num_attention_heads=2,
                                       intermediate_size=32, patch_size=PATCH)),
        masker=dict(type='SemanticAwareMasker', mask_ratio=MASK_RATIO, mode='sample'),
        neck=dict(type='ModernBertPredictor', in_dims=w['embed_dim'], num_layers=BERT_KEPT, num_cls_tokens=NUM_CLS,
                  pretrained=None, local_attention_impl=local_attention_impl,
                  model_config=dict(intermediate_size=w['bert_intermediate'])),
        head=dict(type='ConditionalDiffusionHead', in_dims=1024, target_dims=3 * PATCH * PATCH,
                  width=w['diff_width'], depth=w['diff_depth']),
        align_head=dict(type='AlignmentHead', in_dims=w['embed_dim'], target_dims=w['teacher_dim'],
                        num_layers=w['num_align'], with_pos_embed=True),
        pooled_align_head=dict(type='PooledAlignmentHead', in_dims=w['clip_embed_dim'],
                               target_dims=w['teacher_final_dim'], normalize_target=False))


def build_ivnext_stage1(w: dict, local_attention_impl: str = 'dense') -> torch.nn.Module:
    """ivnext's Stage-1 model with :func:`fill_deterministic` weights (teacher untouched)."""
    from mmaction.registry import MODELS
    from mmaction.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    model = MODELS.build(stage1_config(w, local_attention_impl))
    fill_deterministic(model, skip=lambda name: name.startswith('teacher.'))
    return model


# --------------------------------------------------------------------------------------------------- draws
def stage1_draws(w: dict, seed: int = 0) -> Dict[str, torch.Tensor]:
    """The clip, the injected teacher targets, mask and diffusion draws (ivnext's pixel layout for the noise).

    The clip is :func:`deterministic_values` (so fixtures need not store it) times 1.5; the diffusion noise is
    rounded to fp16 values (so fixtures store it exactly in half the bytes).
    """
    g = torch.Generator().manual_seed(seed)
    b, t, s = w['batch'], w['frames'], w['img_size']
    per_frame = (s // PATCH)**2
    n = t * per_frame
    n_vis = per_frame - int(per_frame * MASK_RATIO)
    clip = 1.5 * deterministic_values('clip', (b, 3, t, s, s))
    mask = torch.ones(b * t, per_frame, dtype=torch.bool)
    for row in range(b * t):  # the release's per-frame selection: n_vis visible tokens in every frame
        mask[row, torch.randperm(per_frame, generator=g)[:n_vis]] = False
    mask = mask.view(b, n)
    hidden = torch.nn.functional.normalize(torch.randn(w['num_align'], b, n, w['teacher_dim'], generator=g), dim=-1)
    pooled_frames = torch.nn.functional.normalize(torch.randn(b, t, w['teacher_final_dim'], generator=g), dim=-1)
    rows = b * (n - t * n_vis)
    timesteps = torch.randint(0, 1000, (rows, ), generator=g)
    timesteps[:2] = torch.tensor([0, 999])  # both ends of the schedule (t = 0 is the decoder NLL term)
    noise = torch.randn(rows, 3 * PATCH * PATCH, generator=g).half().float()
    return dict(clip=clip, mask=mask, teacher_hidden=hidden, teacher_pooled_frames=pooled_frames,
                timesteps=timesteps, noise=noise)


# ----------------------------------------------------------------------------------------------- one step
def run_release_stage1(model: torch.nn.Module, draws: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """One release Stage-1 step (model forward + the engine's loss) with the injected draws; runs backward."""
    captured: Dict[str, torch.Tensor] = {}
    perm = pixel_permutation(PATCH)
    noise = torch.empty_like(draws['noise'])
    noise[:, perm] = draws['noise']  # ivnext layout -> the release's (c, p_h, p_w) layout

    def diffloss_forward(self, target, z, mask=None):  # DiffLoss.forward with the timesteps and noise injected
        terms = self.train_diffusion.training_losses(self.net, target, draws['timesteps'], dict(c=z), noise=noise)
        captured.update(diffusion_mse=terms['mse'].detach(), diffusion_vlb=terms['vb'].detach(),
                        diffusion_target=target[:, perm].detach())
        return terms['loss'].mean()

    model.diffloss.forward = types.MethodType(diffloss_forward, model.diffloss)
    hooks = [
        model.blocks[-1].register_forward_hook(lambda m, i, o: captured.__setitem__('encoder', o.detach())),
        model.bert_decoder.layers[-1].register_forward_hook(
            lambda m, i, o: captured.__setitem__('predictor', o[0].detach())),
    ]
    model.train()
    model.zero_grad()
    mask = draws['mask']
    b = mask.shape[0]
    mid, final, diffusion_loss = model(draws['clip'], mask)
    for hook in hooks:
        hook.remove()
    # engine_for_stage1.train_one_epoch: targets at visible tokens, frame-averaged pooled target, 2 - 2 <s, t>.
    k, _, _, c = draws['teacher_hidden'].shape
    targets_mid = draws['teacher_hidden'][~mask.unsqueeze(0).expand(k, -1, -1)].reshape(k, b, -1, c)
    target_final = draws['teacher_pooled_frames'].mean(dim=1)
    loss_mid = (2 - 2 * (mid * targets_mid).sum(dim=-1)).mean()
    loss_final = (2 - 2 * (final * target_final).sum(dim=-1)).mean()
    loss = loss_mid + loss_final + diffusion_loss
    loss.backward()
    captured['predictor'] = captured['predictor'].view(b, -1, captured['predictor'].shape[-1])
    captured.update(align_tokens=mid.detach(), align_pooled=final.detach(), loss_align=loss_mid.detach(),
                    loss_align_pooled=loss_final.detach(), loss_diffusion=diffusion_loss.detach(),
                    loss=loss.detach())
    return captured


def run_ivnext_stage1(model: torch.nn.Module, draws: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """One ivnext Stage-1 step (``model.loss``) with the same injected draws; runs backward."""
    from ivnext.models.maskers.token_mask import TokenMask
    captured: Dict[str, torch.Tensor] = {}
    clip, mask = draws['clip'], draws['mask']
    grid = model.backbone.grid_of(clip)
    targets = dict(hidden_states=list(draws['teacher_hidden'].unbind(0)),
                   pooled=draws['teacher_pooled_frames'].mean(dim=1), grid=grid)
    model.teacher_targets = lambda clips: targets
    model.sample_mask = lambda clips, targets, generator=None: TokenMask.from_mask(mask)
    head = model.head
    head_loss = head.loss

    def loss_with_draws(z, target):
        captured['diffusion_target'] = target.reshape(-1, target.shape[-1]).detach()
        with torch.no_grad():  # per-token terms, through the head's own pieces
            zf, x0 = z.reshape(-1, z.shape[-1]).float(), target.reshape(-1, target.shape[-1]).float()
            t = draws['timesteps']
            xt = head.q_sample(x0, draws['noise'], t)
            eps, v = head.denoise(xt, t, zf).split(head.target_dims, dim=-1)
            captured['diffusion_mse'] = (draws['noise'] - eps).pow(2).mean(-1)
            captured['diffusion_vlb'] = head.vlb_terms(x0, xt, t, eps, v) * (head.num_train_timesteps / 1000.0)
        return head_loss(z, target, timesteps=draws['timesteps'], noise=draws['noise'])

    head.loss = loss_with_draws
    forward_tokens = model.backbone.forward_tokens

    def forward_tokens_capture(*args, **kwargs):
        final, hidden = forward_tokens(*args, **kwargs)
        captured['encoder'] = final.detach()
        return final, hidden

    model.backbone.forward_tokens = forward_tokens_capture
    hooks = [
        model.neck.register_forward_hook(lambda m, i, o: captured.__setitem__('predictor', o.detach())),
        model.align_head.register_forward_hook(
            lambda m, i, o: captured.__setitem__('align_tokens', torch.stack(o).detach())),
        model.pooled_align_head.register_forward_hook(
            lambda m, i, o: captured.__setitem__('align_pooled', o.detach())),
    ]
    model.train()
    model.zero_grad()
    losses = model.loss(clip)
    for hook in hooks:
        hook.remove()
    del model.teacher_targets, model.sample_mask, head.loss, model.backbone.forward_tokens
    loss = sum(v for k, v in losses.items() if k.startswith('loss'))
    loss.backward()
    captured.update({k: v.detach() for k, v in losses.items() if k.startswith('loss')}, loss=loss.detach())
    return captured


# ---------------------------------------------------------------------------------------------- comparison
def difference(ours: torch.Tensor, ref: torch.Tensor) -> Dict[str, float]:
    """Max abs difference and the same relative to max |ref|."""
    if ours.shape != ref.shape:
        raise ValueError(f'shape mismatch {tuple(ours.shape)} vs {tuple(ref.shape)}')
    abs_diff = (ours.double() - ref.double()).abs().max().item() if ref.numel() else 0.0
    scale = ref.double().abs().max().item() if ref.numel() else 0.0
    return dict(max_abs=abs_diff, rel=abs_diff / scale if scale > 0 else abs_diff)


STAGE1_COMPONENTS = ['encoder', 'predictor', 'diffusion_target', 'diffusion_mse', 'diffusion_vlb', 'loss_diffusion',
                     'align_tokens', 'loss_align', 'align_pooled', 'loss_align_pooled', 'loss']


TRACKED_GRADIENT = 'diffloss.net.input_proj.weight'


def stage1_gradients(ours: torch.nn.Module, theirs: torch.nn.Module, w: dict) -> Dict[str, tuple]:
    """ivnext's gradients mapped into the release's names and layouts, paired with the release's."""
    grads = {name: p.grad for name, p in ours.named_parameters() if p.grad is not None}
    mapped = stage1_to_release(grads, patch_size=PATCH, num_cls_tokens=NUM_CLS)
    theirs_grads = {name: p.grad for name, p in theirs.named_parameters()}
    pairs = {}
    for name, grad in mapped.items():
        ref = theirs_grads.get(name)
        if ref is None:
            ref = torch.zeros_like(grad)
        if name == 'clip_pos_embed':  # CLS rows: added, then dropped by the release
            ref, grad = ref[:, NUM_CLS:], grad[:, NUM_CLS:]
        pairs[name] = (grad, ref)
    return pairs


def compare_stage1(release_dir: str, width: str, local_attention_impl: str = 'dense', seed: int = 0,
                   dtype: torch.dtype = torch.float32) -> dict:
    """Run one Stage-1 step on both sides; returns per-component differences and the raw outputs.

    ``dtype=torch.float64`` runs both models, the clip and the draws in float64 (the schedule tables stay fp32 on
    both sides, as IDDPM reads them; ivnext's alignment losses compute in fp32), to tell fp32 rounding from a
    difference in the maths.
    """
    torch.manual_seed(seed)
    w = WIDTHS[width]
    ours = build_ivnext_stage1(w, local_attention_impl)
    theirs = build_release_stage1(release_dir, w)
    missing, unexpected = theirs.load_state_dict(stage1_to_release(ours.state_dict(), PATCH, 1, NUM_CLS),
                                                 strict=False)
    unexpected = list(unexpected)
    missing = [k for k in missing if not k.startswith(('bert_decoder.embeddings.', 'bert_decoder.final_norm.'))]
    if missing or unexpected:
        raise RuntimeError(f'key map incomplete: release keys not filled {missing}, unknown {unexpected}')
    draws = stage1_draws(w, seed)
    if dtype != torch.float32:
        ours.to(dtype)
        theirs.to(dtype)
        # The release's timestep embedding is built in fp32 (it trains under autocast): cast it to the MLP's dtype,
        # as ivnext's denoiser does.
        embedder = theirs.diffloss.net.time_embed
        embedder.forward = types.MethodType(
            lambda self, t: self.mlp(self.timestep_embedding(t, self.frequency_embedding_size).to(
                self.mlp[0].weight.dtype)), embedder)
        draws = {k: v.to(dtype) if v.is_floating_point() else v for k, v in draws.items()}
    ref = run_release_stage1(theirs, draws)
    out = run_ivnext_stage1(ours, draws)
    rows = {name: difference(out[name], ref[name]) for name in STAGE1_COMPONENTS}
    pairs = stage1_gradients(ours, theirs, w)
    all_ours = torch.cat([g.flatten() for g, _ in pairs.values()])
    all_ref = torch.cat([r.flatten() for _, r in pairs.values()])
    rows['gradients (all shared)'] = difference(all_ours, all_ref)
    # Per tensor: ||ours - release|| / ||release|| (a sum over many rows, such as a weight's gradient, holds
    # fp32 rounding of the largest terms in its smallest entries, which a max-based ratio would report). Tensors
    # whose gradient is zero in exact arithmetic (the pooling's key bias, which a softmax ignores) hold only
    # rounding noise; their norm is floored at 1e-3 of the largest tensor norm.
    norms = {name: ref.norm().item() for name, (_, ref) in pairs.items()}
    floor = 1e-3 * max(norms.values())

    def tensor_rel(name: str) -> float:
        grad, ref = pairs[name]
        return (grad - ref).norm().item() / max(norms[name], floor)

    worst = max(pairs, key=tensor_rel)
    rows[f'gradient, worst tensor, norm-relative ({worst})'] = dict(
        max_abs=(pairs[worst][0] - pairs[worst][1]).abs().max().item(), rel=tensor_rel(worst))
    if worst != TRACKED_GRADIENT:  # the tensor nearest the tolerance in fp32, at every width and dtype
        rows[f'gradient, norm-relative ({TRACKED_GRADIENT})'] = dict(
            max_abs=(pairs[TRACKED_GRADIENT][0] - pairs[TRACKED_GRADIENT][1]).abs().max().item(),
            rel=tensor_rel(TRACKED_GRADIENT))
    return dict(rows=rows, ours=ours, theirs=theirs, draws=draws, ref=ref, out=out, pairs=pairs)


# ------------------------------------------------------------------------------------------- image teacher
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def teacher_config(w: dict) -> dict:
    """ivnext's ``SigLIP2Teacher`` at shapes ``w``: a randomly initialised SigLIP2 at the student's token grid."""
    grid = w['img_size'] // PATCH
    return dict(type='SigLIP2Teacher', variant='siglip2', image_size=grid * w['teacher_patch'],
                num_return_layers=w['num_align'], return_interval=1.0,
                model_config=dict(hidden_size=w['teacher_dim'], intermediate_size=w['teacher_mlp'],
                                  num_hidden_layers=w['teacher_layers'], num_attention_heads=w['teacher_heads'],
                                  patch_size=w['teacher_patch'], num_patches=grid * grid))


def build_ivnext_teacher(w: dict) -> torch.nn.Module:
    """ivnext's SigLIP2 teacher with :func:`fill_deterministic` weights (named as in the tower, any transformers)."""
    from mmaction.registry import MODELS
    from mmaction.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    teacher = MODELS.build(teacher_config(w))
    fill_deterministic(teacher._tower)
    return teacher


def build_release_teacher(release_dir: str, w: dict, ours: torch.nn.Module) -> torch.nn.Module:
    """The release's ``SigLipVisionModel`` (models/siglip_teacher.py) with ``ours``'s weights."""
    module = release_standins.import_release_file(release_dir, 'siglip_teacher.py')
    config = module.SigLipVisionConfig(
        image_size=ours.image_size, patch_size=w['teacher_patch'], hidden_size=w['teacher_dim'],
        intermediate_size=w['teacher_mlp'], num_hidden_layers=w['teacher_layers'],
        num_attention_heads=w['teacher_heads'], clip_norm_type='l2', clip_return_layer=w['num_align'],
        clip_return_interval=1)
    model = module.SigLipVisionModel(config)
    state = siglip_tower_to_release(ours._tower.state_dict(), w['teacher_patch'])
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f'teacher key map incomplete: release keys not filled {missing}, unknown {unexpected}')
    return model.eval()


@torch.no_grad()
def run_release_teacher(model: torch.nn.Module, clip: torch.Tensor, size: int) -> Dict[str, torch.Tensor]:
    """The release's teacher targets of a clip, as ``engine_for_stage1.py`` computes them.

    The engine resizes the (ImageNet-normalised) clip to the teacher resolution (bicubic); the tower's
    ``SigLipImageProcessor`` de-normalises and normalises with mean = std = 0.5; the tower returns the inputs of the
    aligned layers and the pooled embedding, both L2-normalised, and the pooling head's attention (averaged over
    heads), from which the engine draws the mask and takes the frame average of the pooled embedding.
    """
    b, c, t, h, w = clip.shape
    videos = clip
    if h != size:
        videos = torch.nn.functional.interpolate(clip.reshape(b, c * t, h, w), size=(size, size), mode='bicubic',
                                                 align_corners=False).view(b, c, t, size, size)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1)
    pixels = ((videos * std + mean) - 0.5) / 0.5
    hidden, pooled, attn, _ = model(pixels.permute(0, 2, 1, 3, 4).flatten(0, 1), output_hidden_states=True)
    k, _, length, width = hidden.shape
    return dict(teacher_hidden=hidden.reshape(k, b, t * length, width), teacher_pooled_frames=pooled.view(b, t, -1),
                teacher_pooled=pooled.view(b, t, -1).mean(dim=1), teacher_importance=attn.view(b, t, length))


@torch.no_grad()
def run_ivnext_teacher(teacher: torch.nn.Module, clip: torch.Tensor) -> Dict[str, torch.Tensor]:
    """ivnext's teacher targets of the clip, in the release's layout."""
    out = teacher(clip)
    return dict(teacher_hidden=torch.stack(out['hidden_states']), teacher_pooled_frames=out['pooled_frames'],
                teacher_pooled=out['pooled'], teacher_importance=out['importance'])


TEACHER_COMPONENTS = ['teacher_hidden', 'teacher_pooled_frames', 'teacher_pooled', 'teacher_importance']


def compare_teacher(release_dir: str, width: str) -> dict:
    """Teacher targets of both sides on the step's clip; rows of differences and the raw outputs."""
    w = WIDTHS[width]
    ours = build_ivnext_teacher(w)
    theirs = build_release_teacher(release_dir, w, ours)
    clip = 1.5 * deterministic_values('clip', (w['batch'], 3, w['frames'], w['img_size'], w['img_size']))
    ref = run_release_teacher(theirs, clip, ours.image_size)
    out = run_ivnext_teacher(ours, clip)
    rows = {name: difference(out[name], ref[name]) for name in TEACHER_COMPONENTS}
    return dict(rows=rows, ref=ref, out=out)


# --------------------------------------------------------------------------------- semantic-aware masks
def release_selection(importance: torch.Tensor, num_visible: int, draws: int, seed: int) -> torch.Tensor:
    """The release's draw (``engine_for_stage1.py``): a full ``torch.multinomial`` order per frame, first k kept.

    Args:
        importance: (F, L) per-frame attention.
        num_visible: k.
        draws: Independent draws of all F frames.

    Returns:
        Tensor: (draws, F, k) token indices within the frame.
    """
    torch.manual_seed(seed)
    f, length = importance.shape
    order = torch.multinomial(importance.repeat(draws, 1), length)
    return order[:, :num_visible].reshape(draws, f, num_visible)


def ivnext_selection(importance: torch.Tensor, num_visible: int, draws: int, seed: int) -> torch.Tensor:
    """ivnext's ``SemanticAwareMasker(mode='sample')`` (Gumbel-top-k): (draws, F, k) indices within the frame."""
    from ivnext.models.maskers import SemanticAwareMasker
    f, length = importance.shape
    side = math.isqrt(length)
    masker = SemanticAwareMasker(mask_ratio=MASK_RATIO, mode='sample')
    mask = masker.sample(draws, (f, side, side), importance=importance.expand(draws, f, length),
                         generator=torch.Generator().manual_seed(seed))
    visible = mask.visible_index.view(draws, f, -1)  # raster order: frame by frame
    if visible.shape[-1] != num_visible:
        raise RuntimeError(f'masker kept {visible.shape[-1]} tokens per frame, the release {num_visible}')
    return visible - torch.arange(f).view(1, f, 1) * length


def exact_set_probabilities(p: torch.Tensor, k: int) -> Dict[tuple, float]:
    """Law of the set drawn by k sequential draws without replacement, probability proportional to ``p`` (float64).

    Enumerates the L! / (L - k)! ordered draws (small L only).
    """
    p = p.double() / p.double().sum()
    law: Dict[tuple, float] = {}
    for order in itertools.permutations(range(len(p)), k):
        prob, left = 1.0, 1.0
        for i in order:
            prob *= p[i].item() / left
            left -= p[i].item()
        key = tuple(sorted(order))
        law[key] = law.get(key, 0.0) + prob
    return law


def chi_square(observed: torch.Tensor, expected: torch.Tensor, min_expected: float = 5.0) -> tuple:
    """Pearson goodness of fit, cells with expected < ``min_expected`` pooled into one; (statistic, df, p)."""
    from scipy.stats import chi2
    obs, exp = observed.double(), expected.double()
    small = exp < min_expected
    if small.any():
        obs = torch.cat([obs[~small], obs[small].sum(0, keepdim=True)])
        exp = torch.cat([exp[~small], exp[small].sum(0, keepdim=True)])
    stat = ((obs - exp)**2 / exp).sum().item()
    df = obs.numel() - 1
    return stat, df, float(chi2.sf(stat, df))


def two_sample_chi_square(a: torch.Tensor, b: torch.Tensor) -> tuple:
    """Chi-square homogeneity test of two count vectors (2 x C table, sparse columns pooled); (statistic, df, p)."""
    from scipy.stats import chi2
    a, b = a.double(), b.double()
    total = a + b
    share = a.sum() / total.sum()
    small = total * min(share, 1 - share) < 5
    if small.any():
        a = torch.cat([a[~small], a[small].sum(0, keepdim=True)])
        b = torch.cat([b[~small], b[small].sum(0, keepdim=True)])
        total = a + b
    ea, eb = total * share, total * (1 - share)
    stat = (((a - ea)**2 / ea) + ((b - eb)**2 / eb)).sum().item()
    df = a.numel() - 1
    return stat, df, float(chi2.sf(stat, df))


def inclusion_test(ours: torch.Tensor, theirs: torch.Tensor, length: int) -> dict:
    """Per-token two-proportion z-tests of the inclusion frequencies (each draw a Bernoulli per token).

    Args:
        ours, theirs: (draws, F, k) selections.
        length: Tokens per frame L.

    Returns:
        dict: ``tests`` (F*L), smallest ``p_min`` and Bonferroni-adjusted ``p_bonferroni`` = min(1, F*L*p_min),
        largest ``max_freq_diff`` of the inclusion frequencies.
    """
    from scipy.stats import norm

    def freq(sel):
        counts = torch.zeros(sel.shape[1], length, dtype=torch.float64)
        counts.scatter_add_(1, sel.permute(1, 0, 2).reshape(sel.shape[1], -1),
                            torch.ones(sel.shape[1], sel.shape[0] * sel.shape[2], dtype=torch.float64))
        return counts / sel.shape[0]

    n = ours.shape[0]
    fa, fb = freq(ours), freq(theirs)
    pooled = (fa + fb) / 2
    se = (pooled * (1 - pooled) * 2 / n).sqrt()
    zscore = torch.where(se > 0, (fa - fb) / se.clamp_min(1e-300), torch.zeros_like(se))
    pvals = torch.from_numpy(2 * norm.sf(zscore.abs().numpy()))
    p_min = pvals.min().item()
    return dict(tests=pvals.numel(), p_min=p_min, p_bonferroni=min(1.0, p_min * pvals.numel()),
                max_freq_diff=(fa - fb).abs().max().item())


def skewed_importance(length: int) -> torch.Tensor:
    """A sharply peaked per-frame importance (about 30x between the largest and the smallest), to give the tests
    power beyond the near-uniform attention of a randomly initialised teacher."""
    return torch.linspace(0.0, 3.4, length).exp()


def compare_mask_distribution(importance: torch.Tensor, draws: int, seed: int = 0) -> dict:
    """Statistics of the release's multinomial draw against ivnext's Gumbel-top-k on the same importance.

    Args:
        importance: (F, L) per-frame importance (the teacher's frames, plus :func:`skewed_importance`).
        draws: Independent draws of all frames per side.

    Returns:
        dict: ``inclusion`` (:func:`inclusion_test`), and for L <= 16: per frame the exact-law goodness-of-fit
        p-values of both sides (``gof_release``, ``gof_ivnext``) and the homogeneity p-values (``homogeneity``),
        with their Bonferroni-adjusted minima.
    """
    f, length = importance.shape
    k = length - int(length * MASK_RATIO)
    theirs = release_selection(importance, k, draws, seed)
    ours = ivnext_selection(importance, k, draws, seed + 1)
    result = dict(draws=draws, frames=f, tokens=length, visible=k,
                  inclusion=inclusion_test(ours, theirs, length))
    if length <= 16:
        gof_r, gof_o, homo, set_counts = [], [], [], []
        for frame in range(f):
            law = exact_set_probabilities(importance[frame], k)
            keys = sorted(law)
            expected = torch.tensor([law[key] for key in keys], dtype=torch.float64) * draws

            codes = torch.tensor([sum(1 << i for i in key) for key in keys])

            def counts(sel):
                code = (1 << sel[:, frame]).sum(-1)  # a set's bit pattern
                return (code[:, None] == codes[None]).sum(0).double()

            cr, co = counts(theirs), counts(ours)
            gof_r.append(chi_square(cr, expected)[2])
            gof_o.append(chi_square(co, expected)[2])
            homo.append(two_sample_chi_square(co, cr)[2])
            set_counts.append(cr)
        result.update(sets=len(keys), release_set_counts=torch.stack(set_counts), gof_release=gof_r,
                      gof_ivnext=gof_o, homogeneity=homo,
                      gof_release_bonferroni=min(1.0, f * min(gof_r)), gof_ivnext_bonferroni=min(1.0, f * min(gof_o)),
                      homogeneity_bonferroni=min(1.0, f * min(homo)))
    return result


def selections_downstream_equal(selection: torch.Tensor, hidden: torch.Tensor, batch: int) -> bool:
    """Given the same per-frame selections, the release's mask and gathered targets equal ivnext's bit for bit.

    Args:
        selection: (B*T, k) visible token indices within each frame (the release's ``importance[:, :N_vis]``).
        hidden: (K, B, T*L, C) teacher hidden states.
        batch: B.
    """
    from ivnext.models.maskers.token_mask import TokenMask
    from ivnext.models.utils import gather_tokens
    bt, k = selection.shape
    n = hidden.shape[2]
    length = n * batch // bt
    # engine_for_stage1.py
    release_mask = torch.ones(bt, length)
    release_mask[torch.arange(bt).view(-1, 1).repeat(1, k), selection] = 0
    release_mask = release_mask.view(batch, -1).to(torch.bool)
    kk, _, _, c = hidden.shape
    release_targets = hidden[~release_mask.unsqueeze(0).repeat(kk, 1, 1)].reshape(kk, batch, -1, c)
    # ivnext: TokenMask from the visible indices, targets gathered at mask.visible_index (stage1.py)
    frames = bt // batch
    visible = (selection.view(batch, frames, k) + torch.arange(frames).view(1, frames, 1) * length).view(batch, -1)
    mask = TokenMask.from_visible(visible, frames * length)
    ours_targets = torch.stack([gather_tokens(h, mask.visible_index) for h in hidden])
    return bool(torch.equal(mask.mask, release_mask) and torch.equal(ours_targets, release_targets))


# ---------------------------------------------------------------------------------------- diffusion sampling
SAMPLING_CASES = [  # (sampler, steps, temperature, cfg scale): the release's defaults first
    ('ddpm', 1000, 1.0, 1.0), ('ddpm', 50, 0.7, 1.0), ('ddpm', 50, 1.0, 3.0), ('ddim', 50, 1.0, 1.0)]
SAMPLE_ROWS = 4


def sampling_inputs(rows: int, steps: int, seed: int = 0) -> Dict[str, torch.Tensor]:
    """Conditions (from names, like the weights), unconditional conditions and the fp16-exact noise sequence."""
    g = torch.Generator().manual_seed(seed + steps)
    return dict(z=10 * deterministic_values('sample.z', (rows, 1024)),
                z_uncond=10 * deterministic_values('sample.z_uncond', (rows, 1024)),
                noise=torch.randn(steps + 1, rows, 3 * PATCH * PATCH, generator=g).half().float())


@torch.no_grad()
def run_release_sampling(diffloss: torch.nn.Module, inputs: Dict[str, torch.Tensor], sampler: str, steps: int,
                         temperature: float, cfg: float) -> torch.Tensor:
    """``DiffLoss.sample`` (ddpm) / ``gen_diffusion.ddim_sample_loop`` (ddim) of the release, same noise sequence.

    The release's diffusion package is built with ``create_diffusion(str(steps), 'cosine')`` as ``DiffLoss`` does;
    its ``th.randn_like`` draws are replaced by the injected sequence (the guided branch's rows repeat the first
    half, which the release ignores), and the sample is returned in ivnext's pixel layout.
    """
    create_diffusion = sys.modules['diffusion'].create_diffusion
    diffusion = create_diffusion(timestep_respacing=str(steps), noise_schedule='cosine')
    perm = pixel_permutation(PATCH)

    def theirs_layout(x):
        out = torch.empty_like(x)
        out[..., perm] = x
        return out

    noise = theirs_layout(inputs['noise'])
    guided = cfg != 1.0
    if guided:
        noise = torch.cat([noise, noise], dim=1)
        kwargs = dict(c=torch.cat([inputs['z'], inputs['z_uncond']]), cfg_scale=cfg)
        fn = diffloss.net.forward_with_cfg
    else:
        kwargs = dict(c=inputs['z'])
        fn = diffloss.net.forward
    queue = list(noise[1:])
    original = torch.randn_like

    def next_draw(x, *args, **kw):
        draw = queue.pop(0)
        assert draw.shape == x.shape
        return draw.clone()

    torch.randn_like = next_draw
    try:
        with release_standins.cuda_is_identity():
            if sampler == 'ddpm':
                out = diffusion.p_sample_loop(fn, noise[0].shape, noise[0], clip_denoised=False, model_kwargs=kwargs,
                                              progress=False, temperature=temperature)
            else:
                out = diffusion.ddim_sample_loop(fn, noise[0].shape, noise[0], clip_denoised=False,
                                                 model_kwargs=kwargs, progress=False, eta=0.0)
    finally:
        torch.randn_like = original
    return out[:inputs['z'].shape[0]][:, perm]


def run_ivnext_sampling(head: torch.nn.Module, inputs: Dict[str, torch.Tensor], sampler: str, steps: int,
                        temperature: float, cfg: float) -> torch.Tensor:
    """ivnext's ``ConditionalDiffusionHead.sample`` with the same conditions and noise sequence."""
    return head.sample(inputs['z'], num_inference_steps=steps, sampler=sampler, temperature=temperature,
                       cfg_scale=cfg, z_uncond=inputs['z_uncond'] if cfg != 1.0 else None, noise=inputs['noise'])


def compare_sampling(ours: torch.nn.Module, theirs: torch.nn.Module, cases=SAMPLING_CASES,
                     rows: int = SAMPLE_ROWS) -> dict:
    """Samples of both decoders (same weights) per case; rows of differences and the raw samples."""
    result = dict(rows={}, ref={}, out={}, inputs={})
    for sampler, steps, temperature, cfg in cases:
        name = f'sample {sampler}, {steps} steps, temperature {temperature:g}, cfg {cfg:g}'
        inputs = sampling_inputs(rows, steps)
        ref = run_release_sampling(theirs.diffloss, inputs, sampler, steps, temperature, cfg)
        out = run_ivnext_sampling(ours.head, inputs, sampler, steps, temperature, cfg)
        result['rows'][name] = difference(out, ref)
        result['ref'][name], result['out'][name], result['inputs'][name] = ref, out, inputs
    return result


# ------------------------------------------------------------------------------------------------- fixtures
FIXTURE_GRADIENTS = ['patch_embed.proj.bias', 'blocks.0.attn.qkv.weight', 'bert_mask_token', 'diff_pos_embed',
                     'to_bert_proj.head.2.bias', 'bert_decoder.layers.0.attn.Wo.weight',
                     'diffloss.net.res_blocks.0.adaLN_modulation.1.bias', 'diffloss.net.final_layer.linear.bias',
                     'clip_decoder.0.norm.weight', 'final_clip_decoder.head.0.bias', 'clip_projector.cross_attn.q_bias']


def write_stage1_fixture(result: dict, folder: str, width: str, commit: Optional[str],
                         extras: Optional[Dict[str, torch.Tensor]] = None,
                         extra_meta: Optional[dict] = None) -> List[str]:
    """Write the release's numbers (and the draws) at this width as safetensors + JSON.

    ``extras`` (tensors) and ``extra_meta`` (JSON) carry the teacher, mask and sampling parts
    (:func:`fixture_extras`).
    """
    from safetensors.torch import save_file
    os.makedirs(folder, exist_ok=True)
    tensors = {f'draw.{k}': v.contiguous() for k, v in result['draws'].items() if k != 'clip'}
    tensors['draw.noise'] = tensors['draw.noise'].half()
    ref = result['ref']
    for name in ('encoder', 'align_pooled', 'diffusion_mse', 'diffusion_vlb'):
        tensors[f'release.{name}'] = ref[name].contiguous()
    # The predictor output is 1024 wide: keep the first sample's CLS + 8 tokens, 128 channels; 8 aligned tokens.
    tensors['release.predictor_head'] = ref['predictor'][0, :NUM_CLS + 8, :128].contiguous()
    tensors['release.align_tokens_head'] = ref['align_tokens'][:, 0, :8].contiguous()
    for name in FIXTURE_GRADIENTS:
        grad = result['pairs'][name][1]
        tensors[f'grad.{name}'] = grad.flatten()[:256].contiguous()
    tensors['draw.mask'] = tensors['draw.mask'].to(torch.uint8)
    for name, value in (extras or {}).items():
        tensors[name] = value.contiguous()
    path = osp.join(folder, f'stage1_{width}.safetensors')
    save_file(tensors, path)
    meta = dict(width=width, shapes=WIDTHS[width], release_commit=commit, fill='ivnext.convert.release_training.'
                'fill_deterministic', losses={k: ref[k].item() for k in ('loss', 'loss_align', 'loss_align_pooled',
                                                                       'loss_diffusion')},
                gradients_kept='first 256 values of each listed release parameter (release names)',
                **(extra_meta or {}))
    json_path = osp.join(folder, f'stage1_{width}.json')
    with open(json_path, 'w') as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    return [path, json_path]


FIXTURE_SAMPLING = [('ddpm', 10, 1.0, 1.0), ('ddpm', 10, 0.5, 3.0), ('ddim', 10, 1.0, 1.0)]
FIXTURE_SAMPLE_ROWS = 2


def fixture_extras(teacher: dict, mask_stats: dict, stage1: dict) -> tuple:
    """Fixture tensors and JSON of the teacher targets, the release's mask-set counts and short sampling chains."""
    tensors = {f'release.{k}': v for k, v in teacher['ref'].items() if k != 'teacher_pooled'}
    tensors['release.mask_set_counts'] = mask_stats['release_set_counts'].float()
    sampling = compare_sampling(stage1['ours'], stage1['theirs'], FIXTURE_SAMPLING, FIXTURE_SAMPLE_ROWS)
    names = list(sampling['ref'])
    tensors['draw.sample_noise'] = sampling['inputs'][names[0]]['noise'].half()
    for i, name in enumerate(names):
        tensors[f'release.sample.{i}'] = sampling['ref'][name]
    meta = dict(sampling_cases=[list(case) for case in FIXTURE_SAMPLING], mask_draws=mask_stats['draws'],
                mask_frames='the teacher importance of every frame (b, t order), then skewed_importance')
    return tensors, meta


# ------------------------------------------------------------------------------------------------------ main
def format_table(title: str, rows: Dict[str, Dict[str, float]], tolerance: float) -> str:
    lines = [f'{title}', f'| component | max abs diff | relative | <= {tolerance:g} |', '|---|---|---|---|']
    for name, d in rows.items():
        ok = 'yes' if d['rel'] <= tolerance else 'NO'
        lines.append(f"| {name} | {d['max_abs']:.2e} | {d['rel']:.2e} | {ok} |")
    return '\n'.join(lines)


def release_commit(release_dir: str) -> Optional[str]:
    commit_file = osp.join(release_dir, 'COMMIT')
    if osp.isfile(commit_file):
        return open(commit_file).read().strip()
    return None


def format_mask_stats(title: str, stats: dict, downstream_equal: bool) -> str:
    """The masks' statistical tests as a table (p-values Bonferroni-adjusted over frames / tokens)."""
    n = stats['draws']
    lines = [title, f"{stats['frames']} frames of {stats['tokens']} tokens, {stats['visible']} visible per frame; "
             f'{n} independent draws of every frame per side', '| test | p-value (Bonferroni) |', '|---|---|']
    inc = stats['inclusion']
    lines.append(f"| per-token inclusion frequency, release vs ivnext: two-proportion z-tests ({inc['tests']} "
                 f"tokens; largest frequency difference {inc['max_freq_diff']:.4f}) | {inc['p_bonferroni']:.3g} |")
    if 'sets' in stats:
        lines.append(f"| visible set, release vs exact law: chi-square ({stats['sets']} sets, per frame) | "
                     f"{stats['gof_release_bonferroni']:.3g} |")
        lines.append(f"| visible set, ivnext vs exact law: chi-square ({stats['sets']} sets, per frame) | "
                     f"{stats['gof_ivnext_bonferroni']:.3g} |")
        lines.append(f"| visible set, release vs ivnext: chi-square homogeneity (2 x {stats['sets']}, per frame) | "
                     f"{stats['homogeneity_bonferroni']:.3g} |")
    lines.append(f"| same selections -> mask and gathered teacher targets bitwise equal | "
                 f"{'yes' if downstream_equal else 'NO'} |")
    return '\n'.join(lines)


def mask_stats_pass(stats: dict, downstream_equal: bool, alpha: float = 0.01) -> bool:
    """ivnext's law: the inclusion tests, ivnext against the exact law, and the homogeneity test at ``alpha``.

    The release-against-exact-law row checks ``torch.multinomial`` itself (and the test); it is printed, not judged.
    """
    keys = ['gof_ivnext_bonferroni', 'homogeneity_bonferroni']
    p_values = [stats['inclusion']['p_bonferroni']] + [stats[k] for k in keys if k in stats]
    return downstream_equal and min(p_values) >= alpha


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('release_dir', help="the InternVideo-Next folder of the authors' repository")
    parser.add_argument('--width', action='append', choices=sorted(WIDTHS),
                        help='shapes to compare (repeatable; default: tiny)')
    parser.add_argument('--local-attention', action='append', choices=['dense', 'banded'],
                        help="ivnext predictor's local-attention implementation (repeatable; default: dense)")
    parser.add_argument('--tolerance', type=float, default=1e-5, help='relative difference allowed')
    parser.add_argument('--fixture', help='folder to write golden fixtures to (tiny width, dense)')
    parser.add_argument('--commit', help="the authors' commit of the checkout (recorded in fixtures)")
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--dtype', choices=['float32', 'float64'], default='float32',
                        help='precision of the training-step comparison (float64: tells fp32 rounding from maths)')
    parser.add_argument('--no-sampling', action='store_true', help='skip the DDPM / DDIM sampling comparison')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = dict(float32=torch.float32, float64=torch.float64)[args.dtype]
    ok = True
    for width in args.width or ['tiny']:
        w = WIDTHS[width]
        teacher = compare_teacher(args.release_dir, width)
        print(format_table(f'\nImage teacher (SigLIP2), width {width}', teacher['rows'], args.tolerance))
        ok &= all(d['rel'] <= args.tolerance for d in teacher['rows'].values())
        importance = teacher['ref']['teacher_importance'].flatten(0, 1)
        frames = torch.cat([importance, skewed_importance(importance.shape[-1])[None]])
        stats = compare_mask_distribution(frames, w['mask_draws'])
        k = importance.shape[-1] - int(importance.shape[-1] * MASK_RATIO)
        same = selections_downstream_equal(release_selection(importance, k, 1, seed=1)[0],
                                           teacher['ref']['teacher_hidden'], w['batch'])
        print(format_mask_stats(f'\nSemantic-aware masks, width {width}', stats, same))
        ok &= mask_stats_pass(stats, same)
        for index, impl in enumerate(args.local_attention or ['dense']):
            result = compare_stage1(args.release_dir, width, impl, dtype=dtype)
            print(format_table(f'\nStage 1, width {width}, ivnext local attention {impl}, {args.dtype}',
                               result['rows'], args.tolerance))
            ok &= all(d['rel'] <= args.tolerance for d in result['rows'].values())
            if index == 0 and dtype == torch.float32 and not args.no_sampling:
                sampling = compare_sampling(result['ours'], result['theirs'])
                print(format_table(f'\nDiffusion sampling, width {width} ({SAMPLE_ROWS} rows, same noise sequence)',
                                   sampling['rows'], args.tolerance))
                ok &= all(d['rel'] <= args.tolerance for d in sampling['rows'].values())
            if args.fixture and width == 'tiny' and impl == 'dense' and dtype == torch.float32:
                extras, extra_meta = fixture_extras(teacher, stats, result)
                paths = write_stage1_fixture(result, args.fixture, width, args.commit or release_commit(
                    args.release_dir), extras, extra_meta)
                print('wrote', *paths)
    print('EQUIVALENT' if ok else 'DIFFERENT')
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()

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

``--fixture`` also writes a golden fixture (inputs, injected draws, the release's outputs, losses and a few
gradients; safetensors + JSON, no code) that ``tests/test_release_training_equivalence.py`` checks ivnext against.

The release side needs transformers 4.x (its ModernBERT call signature); run with the project's ``.venv``.

Example::

    python tools/convert/verify_training_equivalence.py /path/to/InternVideo/InternVideo-Next --width tiny
    python tools/convert/verify_training_equivalence.py /path/to/InternVideo/InternVideo-Next --width base
"""
import argparse
import functools
import json
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
                                             pixel_permutation, stage1_to_release)

# Shapes compared. 'tiny' keeps the release's fixed widths (ModernBERT hidden 1024, 16 heads, 28 layers of which
# the last 5 are kept; 588-dim patches) and shrinks everything else; 'base' is the released ViT-B recipe.
WIDTHS = {
    'tiny': dict(img_size=42, frames=2, batch=2, embed_dim=64, depth=3, num_heads=4, mlp_ratio=2.0, clip_embed_dim=32,
                 pool_heads=4, teacher_dim=32, teacher_final_dim=32, num_align=2, diff_width=640, diff_depth=2,
                 bert_intermediate=64),
    'base': dict(img_size=224, frames=4, batch=1, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0,
                 clip_embed_dim=768, pool_heads=16, teacher_dim=1536, teacher_final_dim=1536, num_align=6,
                 diff_width=1536, diff_depth=6, bert_intermediate=2624),
}
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


def compare_stage1(release_dir: str, width: str, local_attention_impl: str = 'dense', seed: int = 0) -> dict:
    """Run one Stage-1 step on both sides; returns per-component differences and the raw outputs."""
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
    return dict(rows=rows, ours=ours, theirs=theirs, draws=draws, ref=ref, out=out, pairs=pairs)


# ------------------------------------------------------------------------------------------------- fixtures
FIXTURE_GRADIENTS = ['patch_embed.proj.bias', 'blocks.0.attn.qkv.weight', 'bert_mask_token', 'diff_pos_embed',
                     'to_bert_proj.head.2.bias', 'bert_decoder.layers.0.attn.Wo.weight',
                     'diffloss.net.res_blocks.0.adaLN_modulation.1.bias', 'diffloss.net.final_layer.linear.bias',
                     'clip_decoder.0.norm.weight', 'final_clip_decoder.head.0.bias', 'clip_projector.cross_attn.q_bias']


def write_stage1_fixture(result: dict, folder: str, width: str, commit: Optional[str]) -> List[str]:
    """Write the release's numbers (and the draws) at this width as safetensors + JSON."""
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
    path = osp.join(folder, f'stage1_{width}.safetensors')
    save_file(tensors, path)
    meta = dict(width=width, shapes=WIDTHS[width], release_commit=commit, fill='ivnext.convert.release_training.'
                'fill_deterministic', losses={k: ref[k].item() for k in ('loss', 'loss_align', 'loss_align_pooled',
                                                                       'loss_diffusion')},
                gradients_kept='first 256 values of each listed release parameter (release names)')
    json_path = osp.join(folder, f'stage1_{width}.json')
    with open(json_path, 'w') as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    return [path, json_path]


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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ok = True
    for width in args.width or ['tiny']:
        for impl in args.local_attention or ['dense']:
            result = compare_stage1(args.release_dir, width, impl)
            print(format_table(f'\nStage 1, width {width}, ivnext local attention {impl}', result['rows'],
                               args.tolerance))
            ok &= all(d['rel'] <= args.tolerance for d in result['rows'].values())
            if args.fixture and width == 'tiny' and impl == 'dense':
                paths = write_stage1_fixture(result, args.fixture, width, args.commit or release_commit(
                    args.release_dir))
                print('wrote', *paths)
    print('EQUIVALENT' if ok else 'DIFFERENT')
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()

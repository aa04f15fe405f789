"""Conditional diffusion head (IDDPM hybrid loss on diffusers' DDPMScheduler) and the linear pixel head."""
import math

import ivnext  # noqa: F401
import pytest
import torch
import torch.nn.functional as F
from mmaction.registry import MODELS

from ivnext.models.heads import ConditionalDiffusionHead, LinearPixelHead

Z, D = 16, 12


def tiny_head(**kwargs):
    return ConditionalDiffusionHead(in_dims=Z, target_dims=D, width=64, depth=2, **kwargs)


def capture_net_inputs(head):
    seen = []
    head.net.register_forward_pre_hook(lambda m, args: seen.append([a.detach() for a in args]))
    return seen


def test_noising_matches_closed_form():
    torch.manual_seed(0)
    head = tiny_head()
    z, x0 = torch.randn(2, 3, Z), torch.randn(2, 3, D)
    t = torch.tensor([0, 1, 250, 500, 998, 999])
    noise = torch.randn(6, D)
    seen = capture_net_inputs(head)
    head.loss(z, x0, timesteps=t, noise=noise)
    xt, t_seen, z_seen = seen[0]
    ab = head.scheduler.alphas_cumprod[t].unsqueeze(-1)
    torch.testing.assert_close(xt, ab.sqrt() * x0.reshape(-1, D) + (1 - ab).sqrt() * noise)
    assert torch.equal(t_seen, t) and torch.equal(z_seen, z.reshape(-1, Z))


def test_hybrid_loss_finite_at_both_ends_and_decomposes():
    torch.manual_seed(0)
    head = tiny_head()
    z, x0 = torch.randn(2, 4, Z), torch.randn(2, 4, D)
    for t in (0, head.num_train_timesteps - 1):
        out = head.loss(z, x0, timesteps=t)
        assert torch.isfinite(out['loss_diffusion']) and out['diffusion_vlb'] > 0
        torch.testing.assert_close(out['loss_diffusion'].detach(), out['diffusion_mse'] + out['diffusion_vlb'])
    with pytest.raises(ValueError, match='timesteps'):
        head.loss(z, x0, timesteps=1000)


def test_vlb_trains_variance_only():
    """The VLB term sees a stop-gradient mean: its gradient w.r.t. the eps half of the output is zero."""
    torch.manual_seed(0)
    head = tiny_head()
    x0, xt = torch.randn(5, D), torch.randn(5, D)
    t = torch.tensor([0, 3, 10, 500, 999])
    eps = torch.randn(5, D, requires_grad=True)
    v = torch.zeros(5, D, requires_grad=True)
    vlb = head.vlb_terms(x0, xt, t, eps.detach(), v).sum()
    vlb.backward()
    assert eps.grad is None and v.grad.abs().sum() > 0


def test_vlb_terms_mix_nll_at_t0_and_kl_elsewhere_per_row():
    """Rows at t = 0 get the discretised NLL, the others the KL, whatever their order in the batch."""
    from ivnext.models.losses import discretized_gaussian_log_likelihood, normal_kl
    torch.manual_seed(0)
    head = tiny_head()
    x0, xt, eps, v = (torch.randn(6, D) for _ in range(4))
    t = torch.tensor([5, 0, 999, 0, 1, 40])
    terms = head.vlb_terms(x0, xt, t, eps, v)
    true_mean, true_log_var = head.posterior(x0, xt, t)
    mean, log_var = head.model_posterior(xt, t, eps, v)
    kl = normal_kl(true_mean, true_log_var, mean, log_var).mean(-1)
    nll = -discretized_gaussian_log_likelihood(x0, mean, 0.5 * log_var).mean(-1)
    torch.testing.assert_close(terms, torch.where(t == 0, nll, kl) / math.log(2.0))
    torch.testing.assert_close(head.vlb_terms(x0, xt, t.clamp(min=1), eps, v),
                               normal_kl(*head.posterior(x0, xt, t.clamp(min=1)),
                                         *head.model_posterior(xt, t.clamp(min=1), eps, v)).mean(-1) / math.log(2.0))


def test_posterior_matches_diffusers_learned_range_step():
    """diffusers' learned_range step == IDDPM p(x_{t-1}|x_t) built from the same alphas_cumprod (t > 0)."""
    torch.manual_seed(0)
    head = tiny_head()
    sched = type(head.scheduler).from_config(head.scheduler.config)
    sched.set_timesteps(head.num_train_timesteps)
    xt, eps, v = torch.randn(4, D), torch.randn(4, D), torch.rand(4, D) * 2 - 1
    for t in (1, 2, 500, 999):
        gen = torch.Generator().manual_seed(t)
        prev = sched.step(torch.cat([eps, v], -1), torch.tensor(t), xt, generator=gen).prev_sample
        noise = torch.randn(4, D, generator=torch.Generator().manual_seed(t))
        mean, log_var = head.model_posterior(xt, torch.full((4, ), t), eps, v)
        torch.testing.assert_close(prev, mean + (0.5 * log_var).exp() * noise, rtol=1e-4, atol=1e-5)


def test_diffusion_batch_mul_and_fp32_under_autocast():
    head = tiny_head(diffusion_batch_mul=3)
    seen = capture_net_inputs(head)
    z, x0 = torch.randn(2, 4, Z), torch.randn(2, 4, D)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = head.loss(z.bfloat16(), x0.bfloat16())
    xt, t, zf = seen[0]
    assert xt.shape == (24, D) and zf.dtype == torch.float32 and xt.dtype == torch.float32
    torch.testing.assert_close(zf[:8], zf[16:])  # each pair repeated with its own t / noise
    assert out['loss_diffusion'].dtype == torch.float32


def test_overfits_one_batch_and_samples_reconstruct():
    torch.manual_seed(0)
    # 100 train steps keep the ancestral chain cheap; x_0 clipping bounds the 1/sqrt(alpha_t) amplification of the
    # first steps of the capped cosine schedule, which only a long-trained net tolerates unclipped.
    head = tiny_head(diffusion_batch_mul=16, num_train_timesteps=100, num_inference_steps=100, clip_sample_range=3.0)
    z = torch.randn(1, 8, Z)
    target = torch.randn(1, 8, D).clamp(-2, 2)
    eval_t = torch.linspace(0, 99, 64).long().repeat_interleave(8)[:8 * 64]
    eval_noise = torch.randn(8 * 64, D, generator=torch.Generator().manual_seed(1))

    def eval_loss():
        head.diffusion_batch_mul = 64
        with torch.no_grad():
            value = head.loss(z, target, timesteps=eval_t, noise=eval_noise)['diffusion_mse']
        head.diffusion_batch_mul = 16
        return float(value)

    cond_init = head.net.cond_embed.weight.detach().clone()
    before = eval_loss()
    opt = torch.optim.AdamW(head.parameters(), lr=2e-3, weight_decay=0.0)
    for step in range(400):
        opt.zero_grad()
        head.loss(z, target)['loss_diffusion'].backward()
        if step == 10:
            assert head.net.cond_embed.weight.grad.abs().sum() > 0  # conditioning Linear is trained
        opt.step()
    after = eval_loss()
    assert after < before / 10, (before, after)
    assert not torch.allclose(head.net.cond_embed.weight, cond_init)

    samples = head.sample(z, generator=torch.Generator().manual_seed(0))
    assert samples.shape == target.shape
    err = F.mse_loss(samples, target)
    mean_baseline = F.mse_loss(target.mean(1, keepdim=True).expand_as(target), target)
    zero_baseline = F.mse_loss(torch.zeros_like(target), target)
    assert err < 0.5 * min(mean_baseline, zero_baseline), (err, mean_baseline, zero_baseline)
    # the condition carries the content: swapped conditions give the swapped targets' reconstructions
    swapped = head.sample(z.flip(1), generator=torch.Generator().manual_seed(0))
    assert F.mse_loss(swapped, target.flip(1)) < 0.5 * F.mse_loss(swapped, target)
    # the deterministic DDIM sampler of the same trained net reconstructs too
    ddim = head.sample(z, generator=torch.Generator().manual_seed(0), sampler='ddim')
    assert F.mse_loss(ddim, target) < 0.5 * min(mean_baseline, zero_baseline)


def test_ddim_sampler_uses_eps_only_and_adds_no_noise():
    torch.manual_seed(0)
    head = tiny_head(num_train_timesteps=100, num_inference_steps=10, sampler='ddim').eval()
    z = torch.randn(2, 3, Z)
    first = head.sample(z, generator=torch.Generator().manual_seed(0))
    # Same start noise, any variance output: the same samples (DDIM ignores the learned variance, eta 0).
    eps_net = head.net.forward
    head.net.forward = lambda x, t, c: torch.cat([eps_net(x, t, c)[:, :D], torch.randn(x.shape[0], D) * 5], -1)
    assert torch.allclose(head.sample(z, generator=torch.Generator().manual_seed(0)), first, atol=1e-5)
    ddpm = head.sample(z, generator=torch.Generator().manual_seed(0), sampler='ddpm')
    assert not torch.allclose(ddpm, first)
    with pytest.raises(ValueError, match='sampler'):
        head.sample(z, sampler='euler')
    with pytest.raises(ValueError, match='sampler'):
        tiny_head(sampler='euler')


def test_linear_pixel_head_interface():
    torch.manual_seed(0)
    head = MODELS.build(dict(type='LinearPixelHead', in_dims=Z, target_dims=D, loss_weight=2.0))
    assert isinstance(head, LinearPixelHead)
    z, target = torch.randn(2, 3, Z), torch.randn(2, 3, D)
    out = head.loss(z, target, timesteps=5)
    torch.testing.assert_close(out['loss_pixel'], 2.0 * F.mse_loss(head(z), target))
    torch.testing.assert_close(head.sample(z), head(z))
    out['loss_pixel'].backward()
    assert head.proj.weight.grad.abs().sum() > 0


def test_registry_and_shape_errors():
    head = MODELS.build(dict(type='ConditionalDiffusionHead', in_dims=Z, target_dims=D, width=32, depth=1))
    with pytest.raises(ValueError, match='target must be'):
        head.loss(torch.randn(2, 3, Z), torch.randn(2, 4, D))
    with pytest.raises(ValueError, match='in_dims'):
        head.loss(torch.randn(2, 3, Z + 1), torch.randn(2, 3, D))


def test_loss_token_fraction_trains_on_a_random_subset_of_rows():
    torch.manual_seed(0)
    head = tiny_head(loss_token_fraction=0.25)
    z = torch.randn(2, 8, Z, requires_grad=True)
    head.loss(z, torch.randn(2, 8, D), noise=torch.randn(4, D))  # noise for round(16 * 0.25) rows
    # The zero-initialised output layer passes no gradient back yet; perturb it and check which rows get one.
    torch.manual_seed(1)
    for p in head.net.parameters():
        p.data.add_(torch.randn_like(p) * 0.05)
    z.grad = None
    head.loss(z, torch.randn(2, 8, D))['loss_diffusion'].backward()
    rows_with_grad = (z.grad.abs().sum(-1) > 0).sum()
    assert rows_with_grad == 4
    first = set((z.grad.abs().sum(-1) > 0).flatten().nonzero().flatten().tolist())
    z.grad = None
    head.loss(z, torch.randn(2, 8, D))['loss_diffusion'].backward()
    second = set((z.grad.abs().sum(-1) > 0).flatten().nonzero().flatten().tolist())
    assert len(second) == 4 and first != second  # a new subset every call
    with pytest.raises(ValueError, match='noise must be'):
        head.loss(z, torch.randn(2, 8, D), noise=torch.randn(16, D))
    with pytest.raises(ValueError, match='loss_token_fraction'):
        tiny_head(loss_token_fraction=0.0)


def test_width_below_target_dims_is_refused():
    # The noise prediction is a linear map of the width-dim hidden state: narrower than the target, it cannot span it.
    with pytest.raises(ValueError, match=r'width \(11\) must be >= target_dims \(12\)'):
        ConditionalDiffusionHead(in_dims=Z, target_dims=D, width=D - 1, depth=1)
    ConditionalDiffusionHead(in_dims=Z, target_dims=D, width=D, depth=1)


@pytest.mark.parametrize('precision, matmul_dtype', [('autocast', torch.bfloat16), ('float32', torch.float32)])
def test_denoiser_precision_under_bf16_autocast(precision, matmul_dtype):
    """The denoiser's matmuls follow the bf16 autocast by default; the diffusion maths and the loss stay fp32."""
    head = tiny_head(denoiser_precision=precision)
    outputs = []
    head.net.input_proj.register_forward_hook(lambda m, args, out: outputs.append(out.dtype))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = head.loss(torch.randn(2, 4, Z), torch.randn(2, 4, D))
    assert outputs == [matmul_dtype]
    assert out['loss_diffusion'].dtype == torch.float32 and torch.isfinite(out['loss_diffusion'])
    out['loss_diffusion'].backward()
    assert head.net.input_proj.weight.grad.dtype == torch.float32


def test_denoiser_runs_with_bfloat16_weights():
    """Strategies that cast the model (DeepSpeed bf16) give the denoiser bf16 weights and no autocast."""
    head = tiny_head().to(torch.bfloat16)
    assert head.net.input_proj.weight.dtype == torch.bfloat16 and head.sqrt_ab.dtype == torch.float32
    out = head.loss(torch.randn(2, 4, Z), torch.randn(2, 4, D))
    assert out['loss_diffusion'].dtype == torch.float32 and torch.isfinite(out['loss_diffusion'])
    with pytest.raises(ValueError, match='denoiser_precision'):
        tiny_head(denoiser_precision='fp8')

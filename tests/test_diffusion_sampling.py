"""Diffusion decoder sampling: IDDPM respacing, the release's temperature and classifier-free guidance, DDIM eta."""
import ivnext  # noqa: F401
import pytest
import torch

from ivnext.models.heads import ConditionalDiffusionHead
from ivnext.models.heads.diffusion_sampling import respaced_tables, respaced_timesteps

Z, D = 16, 12


def head(**kwargs):
    torch.manual_seed(0)
    model = ConditionalDiffusionHead(in_dims=Z, target_dims=D, width=32, depth=2, **kwargs).eval()
    with torch.no_grad():  # non-zero output layer (DiT zero-init would make every sample the same)
        model.net.output.weight.normal_(std=0.05)
        model.net.final_modulation[-1].weight.normal_(std=0.05)
    return model


def test_defaults_are_the_release_sampling_options():
    model = ConditionalDiffusionHead(in_dims=Z, target_dims=D, width=32, depth=1)
    assert (model.num_inference_steps, model.sample_temperature, model.cfg_scale, model.sampler) == (
        1000, 1.0, 1.0, 'ddpm')
    assert model.clip_sample_range is None  # clip_denoised=False in DiffLoss.sample


def test_respacing_keeps_both_ends_and_rebuilds_betas():
    assert respaced_timesteps(1000, 1000) == list(range(1000))
    kept = respaced_timesteps(1000, 100)
    assert len(kept) == 100 and kept[0] == 0 and kept[-1] == 999
    ab = torch.linspace(0.99, 0.01, 1000, dtype=torch.float64)
    tables = respaced_tables(ab, kept)
    # the respaced chain has the same cumulative products at the kept steps
    torch.testing.assert_close(tables['alphas_cumprod'], ab[torch.tensor(kept)])
    torch.testing.assert_close(torch.cumprod(1 - tables['log_betas'].exp(), 0), ab[torch.tensor(kept)])
    with pytest.raises(ValueError, match='num_inference_steps'):
        respaced_timesteps(10, 11)


def test_zero_temperature_removes_the_ancestral_noise():
    model = head(num_train_timesteps=100, num_inference_steps=10)
    z = torch.randn(2, 3, Z)
    start = torch.randn(11, 6, D)
    noise = torch.cat([start[:1], torch.randn(10, 6, D)])
    a = model.sample(z, temperature=0.0, noise=start)
    b = model.sample(z, temperature=0.0, noise=noise)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(model.sample(z, temperature=1.0, noise=start),
                              model.sample(z, temperature=1.0, noise=noise))


def test_guidance_mixes_conditional_and_unconditional_noise_predictions():
    model = head(num_train_timesteps=100, num_inference_steps=10)
    z, u = torch.randn(2, 3, Z), torch.randn(2, 3, Z)
    noise = torch.randn(11, 6, D)
    # scale 1: the unconditional branch plays no part
    torch.testing.assert_close(model.sample(z, cfg_scale=1.0, z_uncond=u, noise=noise), model.sample(z, noise=noise))
    # scale 0: the unconditional prediction alone (the variance stays the conditional one; temperature 0 hides it)
    torch.testing.assert_close(model.sample(z, cfg_scale=0.0, z_uncond=u, noise=noise, temperature=0.0),
                               model.sample(u, noise=noise, temperature=0.0), rtol=1e-5, atol=1e-4)
    guided = model.sample(z, cfg_scale=3.0, z_uncond=u, noise=noise)
    assert not torch.allclose(guided, model.sample(z, noise=noise))
    with pytest.raises(ValueError, match='z_uncond'):
        model.sample(z, cfg_scale=3.0)
    configured = head(num_train_timesteps=100, num_inference_steps=10, cfg_scale=3.0)
    torch.testing.assert_close(configured.sample(z, z_uncond=u, noise=noise), guided)


def test_ddim_eta_zero_is_deterministic_and_eta_one_is_not():
    model = head(num_train_timesteps=100, num_inference_steps=10, sampler='ddim')
    z = torch.randn(2, 3, Z)
    start = torch.randn(11, 6, D)
    other = torch.cat([start[:1], torch.randn(10, 6, D)])
    torch.testing.assert_close(model.sample(z, noise=start), model.sample(z, noise=other))
    stochastic = head(num_train_timesteps=100, num_inference_steps=10, sampler='ddim', ddim_eta=1.0)
    assert not torch.allclose(stochastic.sample(z, noise=start), stochastic.sample(z, noise=other))


def test_bad_sampling_fields_are_refused():
    with pytest.raises(ValueError, match='sample_temperature'):
        head(sample_temperature=-1.0)
    with pytest.raises(ValueError, match='ddim_eta'):
        head(ddim_eta=-0.5)
    model = head(num_train_timesteps=100, num_inference_steps=10)
    with pytest.raises(ValueError, match='noise must be'):
        model.sample(torch.randn(2, Z), noise=torch.randn(10, 2, D))

"""Per-token conditional diffusion decoder (IDDPM, learned-range variance) for masked pixel patches."""
import contextlib
import math
from typing import Dict, Optional, Union

import torch
from diffusers import DDPMScheduler
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from mmaction.registry import MODELS
from mmengine.model import BaseModule
from torch import nn

from ..layers import run_blocks
from ..losses import discretized_gaussian_log_likelihood, normal_kl
from ..utils import full_precision
from .diffusion_sampling import respaced_tables, respaced_timesteps, reverse_step


class AdaLNResBlock(nn.Module):
    """``x + gate * MLP(LN(x) * (1 + scale) + shift)`` with (shift, scale, gate) from the condition.

    Args:
        width: Token width.
    """

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 3 * width))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Args: x (N, W), cond (N, W). Returns (N, W)."""
        shift, scale, gate = self.modulation(cond).chunk(3, dim=-1)
        return x + gate * self.mlp(self.norm(x) * (1 + scale) + shift)


class AdaLNMLPDenoiser(nn.Module):
    """Residual MLP denoiser with adaLN conditioning on ``timestep embedding + Linear(z)``.

    adaLN modulations and the output layer start at zero (DiT), so the untrained net outputs zeros.

    Args:
        target_dims: Width D of one noisy target vector.
        cond_dims: Width of the condition z.
        width: Hidden width.
        depth: Residual blocks.
        out_dims: Output width (2*D for epsilon + variance interpolation).
        with_cp: Recompute blocks in the backward pass (activation checkpointing).
    """

    def __init__(self, target_dims: int, cond_dims: int, width: int, depth: int, out_dims: int,
                 with_cp: bool = False):
        super().__init__()
        self.input_proj = nn.Linear(target_dims, width)
        self.time_proj = Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=0)  # [cos | sin], 1e4 period
        self.time_embed = TimestepEmbedding(256, width)  # Linear-SiLU-Linear
        self.cond_embed = nn.Linear(cond_dims, width)
        self.blocks = nn.ModuleList([AdaLNResBlock(width) for _ in range(depth)])
        self.final_norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.output = nn.Linear(width, out_dims)
        self.with_cp = with_cp
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.time_embed.linear_1.weight, std=0.02)
        nn.init.normal_(self.time_embed.linear_2.weight, std=0.02)
        zero = [block.modulation[-1] for block in self.blocks] + [self.final_modulation[-1], self.output]
        for linear in zero:
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Args: x (N, D) noisy targets, t (N,) integer timesteps, z (N, C_z). Returns (N, out_dims)."""
        cond = self.time_embed(self.time_proj(t).to(x.dtype)) + self.cond_embed(z)
        h = self.input_proj(x)
        h = run_blocks(self.blocks, h, cond, with_cp=self.with_cp and self.training)
        shift, scale = self.final_modulation(cond).chunk(2, dim=-1)
        return self.output(self.final_norm(h) * (1 + scale) + shift)


SAMPLERS = ('ddpm', 'ddim')


def _widen(x: torch.Tensor) -> torch.Tensor:
    """fp32 for the diffusion maths, float64 kept (a float64 model, e.g. an equivalence check, stays float64)."""
    return x if x.dtype == torch.float64 else x.float()


@MODELS.register_module()
class ConditionalDiffusionHead(BaseModule):
    """Diffusion decoder modelling each masked patch independently given the predictor output at its slot.

    The noise schedule is IDDPM's cosine schedule (``squaredcos_cap_v2``, 1000 steps; diffusers'
    ``DDPMScheduler`` holds the configuration), with epsilon prediction and learned-range variance: the denoiser
    outputs ``[eps (D) | v (D)]`` and the model log-variance is ``(v+1)/2 * log(beta_t) + (1-v)/2 * log(beta~_t)``
    with beta~_t the posterior variance, clipped at t = 0 to beta~_1 (IDDPM). ``v`` is not clamped to [-1, 1]
    (neither is it in IDDPM). Sampling (:mod:`.diffusion_sampling`) runs IDDPM's respaced chain, as the release's
    ``DiffLoss.sample``: ancestral DDPM with the learned variance, a temperature on its noise and optional
    classifier-free guidance, or DDIM.

    Training loss (IDDPM hybrid, as the release): per token ``mean_D (eps - eps_hat)^2`` plus the variational
    term in bits/dim with the model mean stop-gradiented, so it trains only the variance: ``KL(q(x_{t-1}|x_t,
    x_0) || p(x_{t-1}|x_t))`` for t > 0 and the discretised-Gaussian NLL of x_0 (bin 2/255) at t = 0; the
    VLB is scaled by ``num_train_timesteps / 1000``. The diffusion maths (noising, posteriors, KL, NLL) runs in
    fp32 with autocast disabled; the denoiser network runs in the surrounding autocast dtype (bf16 in the paper's
    recipe, as in the release), which is where the head's FLOPs are.

    Args:
        in_dims: Width of the condition z (predictor width C_pred).
        target_dims: Width D of a target patch (3 * 14 * 14 = 588).
        width: Denoiser width; at least ``target_dims``, since the noise prediction is a linear map of the hidden
            state (released models: 1536 for 588).
        depth: Denoiser residual blocks.
        num_train_timesteps: Diffusion steps T.
        beta_schedule: diffusers beta schedule (``squaredcos_cap_v2`` = IDDPM cosine).
        num_inference_steps: Default sampling steps, IDDPM respacing over [0, T-1] (the release's
            ``num_sampling_steps``, 1000).
        diffusion_batch_mul: Repeat each (z, target) pair this many times with independent t and noise
            (1 in the released Stage-1 models).
        loss_weight: Scale of ``loss_diffusion``.
        clip_sample_range: When set, sampling clamps the predicted x_0 to [-r, r] at every step (IDDPM's
            ``clip_denoised``). None (release) leaves it free; note that with the capped cosine schedule the first
            respaced steps amplify eps errors by 1/sqrt(alpha_t), so only a well-trained head samples well
            unclipped with few steps.
        sampler: 'ddpm' (release): ancestral sampling with the learned variance. 'ddim': DDIM from the predicted
            eps alone (deterministic with ``ddim_eta=0``), the same trained network; a briefly trained head's
            learned variance is still poor, and DDIM does not use it.
        sample_temperature: Factor on the noise added at every ancestral (ddpm) step, the release's
            ``DiffLoss.sample(temperature=1.0)``; below 1 sharpens samples. DDIM ignores it.
        cfg_scale: Classifier-free guidance scale, the release's ``DiffLoss.sample(cfg=1.0)``: with
            ``cfg_scale != 1`` the predicted noise is ``eps(z_uncond) + cfg_scale * (eps(z) - eps(z_uncond))``
            (the learned variance is the conditional one), which needs unconditional conditions ``z_uncond`` in
            :meth:`sample`.
        ddim_eta: DDIM's eta (0: deterministic; 1: the DDPM posterior variance), as IDDPM's ``ddim_sample``.
        loss_token_fraction: Fraction of the masked patches the loss trains on, a new random subset of the batch's
            rows every call (before ``diffusion_batch_mul``). 1.0 (release): all of them. Below 1 it trades
            decoder samples per step for step time, where the decoder's matrix products dominate a step (a CPU).
        nll_cdf: Normal CDF of the t = 0 decoder NLL: 'tanh' (IDDPM's approximation, the release) or 'exact'.
        with_cp: Recompute denoiser blocks in the backward pass (activation checkpointing).
        denoiser_precision: 'autocast' (default): the denoiser follows the surrounding autocast (bf16 matmuls
            under the bf16 recipe). 'float32': the denoiser too runs with autocast off (about 10x slower matmuls on
            an H100 for the head's share of the step).
        init_cfg: MMEngine init config.
    """

    def __init__(self, in_dims: int = 1024, target_dims: int = 588, width: int = 1536, depth: int = 6,
                 num_train_timesteps: int = 1000, beta_schedule: str = 'squaredcos_cap_v2',
                 num_inference_steps: int = 1000, diffusion_batch_mul: int = 1, loss_weight: float = 1.0,
                 clip_sample_range: Optional[float] = None, sampler: str = 'ddpm', sample_temperature: float = 1.0,
                 cfg_scale: float = 1.0, ddim_eta: float = 0.0, loss_token_fraction: float = 1.0,
                 nll_cdf: str = 'tanh', with_cp: bool = False,
                 denoiser_precision: str = 'autocast', init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if diffusion_batch_mul < 1:
            raise ValueError(f'diffusion_batch_mul must be >= 1, got {diffusion_batch_mul}')
        if width < target_dims:
            # The predicted noise is a linear map of a width-dim hidden state: with width < target_dims it can never
            # hold the other target_dims - width directions of the noise, which sampling then never removes.
            raise ValueError(
                f'ConditionalDiffusionHead width ({width}) must be >= target_dims ({target_dims}): the denoiser '
                f'predicts the noise of each {target_dims}-dim patch through a {width}-wide layer, so at least '
                f'{target_dims - width} noise directions can never be predicted (the noise loss stays above '
                f'{(target_dims - width) / target_dims:.2f} and samples stay noise). Raise width to {target_dims} '
                'or more (released models: 1536 for 588).')
        if sampler not in SAMPLERS:
            raise ValueError(f'sampler must be one of {SAMPLERS}, got {sampler!r}')
        self.sampler = sampler
        if not sample_temperature >= 0:
            raise ValueError(f'sample_temperature must be >= 0 (1.0 as released), got {sample_temperature}')
        if not ddim_eta >= 0:
            raise ValueError(f'ddim_eta must be >= 0 (0.0: deterministic DDIM), got {ddim_eta}')
        self.sample_temperature = float(sample_temperature)
        self.cfg_scale = float(cfg_scale)
        self.ddim_eta = float(ddim_eta)
        if nll_cdf not in ('tanh', 'exact'):
            raise ValueError(f"nll_cdf must be 'tanh' or 'exact', got {nll_cdf!r}")
        self.nll_cdf = nll_cdf
        if not 0.0 < loss_token_fraction <= 1.0:
            raise ValueError(f'loss_token_fraction must be in (0, 1], got {loss_token_fraction}')
        self.loss_token_fraction = float(loss_token_fraction)
        if denoiser_precision not in ('autocast', 'float32'):
            raise ValueError(f"denoiser_precision must be 'autocast' or 'float32', got {denoiser_precision!r}")
        self.denoiser_precision = denoiser_precision
        self.in_dims = in_dims
        self.target_dims = target_dims
        self.num_train_timesteps = num_train_timesteps
        self.num_inference_steps = num_inference_steps
        self.diffusion_batch_mul = diffusion_batch_mul
        self.loss_weight = loss_weight
        self.clip_sample_range = clip_sample_range
        self.net = AdaLNMLPDenoiser(target_dims, in_dims, width, depth, 2 * target_dims, with_cp)
        self.scheduler = DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule,
                                       variance_type='learned_range', prediction_type='epsilon', clip_sample=False,
                                       timestep_spacing='linspace')
        self._register_posterior_buffers()

    def _register_posterior_buffers(self) -> None:
        """Forward-process and posterior q(x_{t-1} | x_t, x_0) coefficients, computed in float64, stored in fp32.

        For the IDDPM cosine schedule the betas are computed here in float64 (as IDDPM and the release do);
        diffusers builds them in fp32, and its ``alphas_cumprod`` then drifts by up to 1e-5 relative at the last
        steps, where ``1 / sqrt(alphas_cumprod)`` reaches 2e4. Other schedules use the scheduler's values.
        """
        ab = self._alphas_cumprod_float64()
        ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
        betas = 1 - ab / ab_prev
        post_var = betas * (1 - ab_prev) / (1 - ab)
        buffers = dict(
            sqrt_ab=ab.sqrt(),
            sqrt_one_minus_ab=(1 - ab).sqrt(),
            sqrt_recip_ab=ab.rsqrt(),
            sqrt_recipm1_ab=(1 / ab - 1).sqrt(),
            log_betas=betas.log(),
            post_log_var=torch.cat([post_var[1:2], post_var[1:]]).log(),  # beta~_0 clipped to beta~_1 (IDDPM)
            post_coef_x0=betas * ab_prev.sqrt() / (1 - ab),
            post_coef_xt=(1 - ab_prev) * (1 - betas).sqrt() / (1 - ab),
        )
        for name, value in buffers.items():
            self.register_buffer(name, value.float(), persistent=False)
        self._schedule_buffers = tuple(buffers)

    def _alphas_cumprod_float64(self) -> torch.Tensor:
        config = self.scheduler.config
        if config.beta_schedule != 'squaredcos_cap_v2' or config.trained_betas is not None:
            return self.scheduler.alphas_cumprod.double()
        steps = config.num_train_timesteps
        grid = torch.arange(steps + 1, dtype=torch.float64) / steps
        alpha_bar = torch.cos((grid + 0.008) / 1.008 * math.pi / 2)**2
        betas = (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
        return torch.cumprod(1 - betas, dim=0)

    def _apply(self, fn, recurse: bool = True):
        """Casts of the whole model (DeepSpeed / FSDP bf16) leave the schedule tables in fp32.

        Answers ``nn.Module.to(dtype)`` / ``.bfloat16()``, which cast every floating buffer: DeepSpeed's bf16
        engine casts the whole model that way and PyTorch has no per-buffer opt-out, while the posterior
        coefficients need fp32 (bf16 keeps 8 mantissa bits). ``_apply`` is the one method every cast and move goes
        through, so the override sees them all; device moves are left as they are. It can go when PyTorch lets a
        buffer keep its dtype under module casts.
        """
        super()._apply(fn, recurse)
        device, dtype = self.sqrt_ab.device, self.sqrt_ab.dtype
        if dtype != torch.float32 and dtype.is_floating_point:
            self._register_posterior_buffers()
            for name in self._schedule_buffers:
                self._buffers[name] = self._buffers[name].to(device)
        return self

    @staticmethod
    def _flatten(z: torch.Tensor, target: Optional[torch.Tensor], in_dims: int, target_dims: int):
        if z.shape[-1] != in_dims:
            raise ValueError(f'z must end with in_dims={in_dims}, got {tuple(z.shape)}; set in_dims to the '
                             'predictor width.')
        if target is not None:
            if target.shape[-1] != target_dims or target.shape[:-1] != z.shape[:-1]:
                raise ValueError(f'target must be {tuple(z.shape[:-1]) + (target_dims, )}, got '
                                 f'{tuple(target.shape)}: one {target_dims}-dim patch per condition vector.')
            target = _widen(target.reshape(-1, target_dims))
        return _widen(z.reshape(-1, in_dims)), target

    def _at(self, buffer: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return buffer[t].unsqueeze(-1)

    def q_sample(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Noisy targets ``sqrt(ab_t) x0 + sqrt(1 - ab_t) noise``; x0, noise (N, D), t (N,)."""
        return self._at(self.sqrt_ab, t) * x0 + self._at(self.sqrt_one_minus_ab, t) * noise

    def posterior(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor):
        """Mean and (clipped) log-variance of q(x_{t-1} | x_t, x_0); x0, xt (N, D), t (N,)."""
        mean = self._at(self.post_coef_x0, t) * x0 + self._at(self.post_coef_xt, t) * xt
        return mean, self._at(self.post_log_var, t).expand_as(mean)

    def model_posterior(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, v: torch.Tensor):
        """Mean and log-variance of p(x_{t-1} | x_t) from predicted ``eps`` and variance output ``v``.

        Args:
            xt: (N, D) noisy targets.
            t: (N,) timesteps.
            eps: (N, D) predicted noise.
            v: (N, D) in [-1, 1] nominally: log-variance = (v+1)/2 log(beta_t) + (1-v)/2 log(beta~_t).

        Returns:
            tuple: (mean (N, D), log_var (N, D)).
        """
        # x0 = xt / sqrt(ab) - sqrt(1/ab - 1) eps, with both coefficients from float64 tables (IDDPM's form: at
        # large t, where sqrt(ab) is small, the fp32 rounding then matches the release's).
        x0_hat = self._at(self.sqrt_recip_ab, t) * xt - self._at(self.sqrt_recipm1_ab, t) * eps
        mean = self._at(self.post_coef_x0, t) * x0_hat + self._at(self.post_coef_xt, t) * xt
        frac = (v + 1) / 2
        log_var = frac * self._at(self.log_betas, t) + (1 - frac) * self._at(self.post_log_var, t)
        return mean, log_var

    def vlb_terms(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor,
                  v: torch.Tensor) -> torch.Tensor:
        """Per-row variational bound term in bits/dim.

        Args:
            x0: (N, D) clean targets.
            xt: (N, D) noisy targets at t.
            t: (N,) timesteps.
            eps: (N, D) predicted noise (pass it detached to train only the variance, as the hybrid loss).
            v: (N, D) variance interpolation outputs.

        Returns:
            Tensor: (N,) KL(q || p) for t > 0 and -log p(x0 | x1) for t = 0, in bits, averaged over D.
        """
        true_mean, true_log_var = self.posterior(x0, xt, t)
        model_mean, model_log_var = self.model_posterior(xt, t, eps, v)
        kl = normal_kl(true_mean, true_log_var, model_mean, model_log_var).mean(-1)
        if x0.device.type != 'cpu':
            # On an accelerator: the NLL of every row, then a select (gathering the t = 0 rows would read their
            # count back to the host and stall the step).
            nll = -discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * model_log_var,
                                                       cdf=self.nll_cdf).mean(-1)
            return torch.where(t == 0, nll, kl) / math.log(2.0)
        # On the CPU, where reading the count costs nothing: the discretised-Gaussian NLL (erf / log_ndtr, about a
        # quarter of a demo Stage-1 step on one CPU thread when computed for every row) only for the rows at t = 0,
        # about 1 in num_train_timesteps.
        first = (t == 0).nonzero().squeeze(-1)
        if first.numel():
            nll = -discretized_gaussian_log_likelihood(x0[first], model_mean[first], 0.5 * model_log_var[first],
                                                       cdf=self.nll_cdf).mean(-1)
            kl = kl.index_put((first, ), nll)
        return kl / math.log(2.0)

    def loss(self, z: torch.Tensor, target: torch.Tensor, timesteps: Optional[Union[int, torch.Tensor]] = None,
             noise: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """IDDPM hybrid loss.

        Args:
            z: (B, M, C_pred) predictor outputs at the masked tokens (any leading shape).
            target: (B, M, D) normalised pixel patches of the same tokens.
            timesteps: Optional fixed timesteps: an int, or a (R*diffusion_batch_mul,) long tensor, R = B*M rows
                (``round(B*M*loss_token_fraction)`` when below 1); random uniform in [0, T) by default.
            noise: Optional (R*diffusion_batch_mul, D) noise; standard normal by default.

        Returns:
            dict: ``loss_diffusion`` (scalar, weighted, to optimise), and detached ``diffusion_mse`` /
            ``diffusion_vlb`` (means over rows) for logging.
        """
        with full_precision(z.device):
            z, x0 = self._flatten(z, target, self.in_dims, self.target_dims)
            rows = x0.shape[0]
            keep = max(1, round(rows * self.loss_token_fraction))
            if keep < rows:  # the count comes from shapes: no host read
                pick = torch.randperm(rows, device=x0.device)[:keep]
                z, x0 = z[pick], x0[pick]
            k = self.diffusion_batch_mul
            if k > 1:
                z, x0 = z.repeat(k, 1), x0.repeat(k, 1)
            n = x0.shape[0]
            if timesteps is None:
                t = torch.randint(0, self.num_train_timesteps, (n, ), device=x0.device)
            else:
                t = torch.as_tensor(timesteps, device=x0.device).long()
                if t.dim() == 0:
                    t = t.expand(n)
                if t.shape != (n, ) or bool((t < 0).any()) or bool((t >= self.num_train_timesteps).any()):
                    raise ValueError(f'timesteps must be an int or a ({n},) tensor in [0, '
                                     f'{self.num_train_timesteps}), got {tuple(t.shape)}')
            if noise is None:
                noise = torch.randn_like(x0)
            elif noise.shape != x0.shape:
                raise ValueError(f'noise must be {tuple(x0.shape)}, got {tuple(noise.shape)}')
            noise = noise.to(x0.dtype)
            xt = self.q_sample(x0, noise, t)
        out = self.denoise(xt, t, z)
        with full_precision(z.device):
            eps, v = out.split(self.target_dims, dim=-1)
            mse = (noise - eps).pow(2).mean(-1)
            vlb = self.vlb_terms(x0, xt, t, eps.detach(), v) * (self.num_train_timesteps / 1000.0)
            loss = (mse + vlb).mean() * self.loss_weight
        return dict(loss_diffusion=loss, diffusion_mse=mse.mean().detach(), diffusion_vlb=vlb.mean().detach())

    def denoise(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Run the denoiser in its configured precision.

        Args:
            x: (N, D) noisy targets (fp32).
            t: (N,) timesteps.
            z: (N, C_z) conditions.

        Returns:
            Tensor: (N, 2D) ``[eps | v]`` in fp32 (float64 for a float64 model).
        """
        dtype = self.net.input_proj.weight.dtype  # bf16 when a strategy casts the model (DeepSpeed bf16)
        context = full_precision(x.device) if self.denoiser_precision == 'float32' else contextlib.nullcontext()
        with context:
            return _widen(self.net(x.to(dtype), t, z.to(dtype)))

    def sampling_tables(self, num_inference_steps: int) -> Dict[str, torch.Tensor]:
        """Respaced reverse-process tables (float64) for ``num_inference_steps`` steps (IDDPM respacing)."""
        kept = respaced_timesteps(self.num_train_timesteps, int(num_inference_steps))
        return respaced_tables(self._alphas_cumprod_float64(), kept)

    @torch.no_grad()
    def sample(self, z: torch.Tensor, num_inference_steps: Optional[int] = None,
               generator: Optional[torch.Generator] = None, sampler: Optional[str] = None,
               temperature: Optional[float] = None, cfg_scale: Optional[float] = None,
               z_uncond: Optional[torch.Tensor] = None, noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Sample one patch per condition vector (ancestral DDPM or DDIM on IDDPM's respaced chain).

        The release's ``DiffLoss.sample`` (IDDPM ``p_sample_loop``, ``clip_denoised=False``) with its
        ``temperature`` and classifier-free guidance; DDIM is IDDPM's ``ddim_sample_loop``.

        Args:
            z: (B, M, C_pred) conditions (any leading shape).
            num_inference_steps: Sampling steps (default ``self.num_inference_steps``), IDDPM-respaced.
            generator: Optional torch generator for reproducible noise (when ``noise`` is not given).
            sampler: 'ddpm' or 'ddim' (default ``self.sampler``).
            temperature: Factor on the ancestral noise (default ``self.sample_temperature``).
            cfg_scale: Guidance scale (default ``self.cfg_scale``); 1 samples from ``z`` alone.
            z_uncond: Unconditional conditions, the shape of ``z``; required when ``cfg_scale != 1``.
            noise: Optional (S + 1, N, D) draws, N = rows of ``z``: ``noise[0]`` the starting x_T,
                ``noise[k + 1]`` the draw of the k-th reverse step (the last one unused, as IDDPM draws it too).

        Returns:
            Tensor: (B, M, D) samples in the target's (normalised pixel) space.
        """
        steps = int(num_inference_steps or self.num_inference_steps)
        sampler = sampler or self.sampler
        if sampler not in SAMPLERS:
            raise ValueError(f'sampler must be one of {SAMPLERS}, got {sampler!r}')
        temperature = self.sample_temperature if temperature is None else float(temperature)
        cfg_scale = self.cfg_scale if cfg_scale is None else float(cfg_scale)
        guided = cfg_scale != 1.0
        if guided and (z_uncond is None or z_uncond.shape != z.shape):
            raise ValueError(f'cfg_scale={cfg_scale} needs z_uncond, unconditional conditions of the shape of z '
                             f'{tuple(z.shape)}, got {None if z_uncond is None else tuple(z_uncond.shape)}; set '
                             'cfg_scale=1.0 to sample without guidance.')
        tables = self.sampling_tables(steps)
        num = len(tables['timestep'])
        with full_precision(z.device):
            zf, _ = self._flatten(z, None, self.in_dims, self.target_dims)
            n = zf.shape[0]
            if guided:
                zf = torch.cat([zf, self._flatten(z_uncond, None, self.in_dims, self.target_dims)[0]])
            if noise is not None:
                if tuple(noise.shape) != (num + 1, n, self.target_dims):
                    raise ValueError(f'noise must be (steps + 1, N, D) = {(num + 1, n, self.target_dims)}, got '
                                     f'{tuple(noise.shape)}')
                draws = noise.to(device=zf.device, dtype=zf.dtype)
            else:
                gen_device = generator.device if generator is not None else zf.device
                draws = None
            x = draws[0] if draws is not None else torch.randn(
                (n, self.target_dims), generator=generator, device=gen_device).to(zf.device)
            for k in reversed(range(num)):
                t = tables['timestep'][k].to(zf.device).expand(zf.shape[0])
                out = self.denoise(torch.cat([x, x]) if guided else x, t, zf)
                eps, v = out[:n, :self.target_dims], out[:n, self.target_dims:]
                if guided:
                    uncond = out[n:, :self.target_dims]
                    eps = uncond + cfg_scale * (eps - uncond)
                if draws is not None:
                    step_noise = draws[num - k]
                elif sampler == 'ddpm' or (k > 0 and self.ddim_eta > 0):
                    step_noise = torch.randn((n, self.target_dims), generator=generator,
                                             device=gen_device).to(zf.device)
                else:
                    step_noise = torch.zeros_like(x)
                x = reverse_step(tables, k, x, eps, v, step_noise, sampler, temperature=temperature,
                                 eta=self.ddim_eta, clip_range=self.clip_sample_range)
        return x.reshape(*z.shape[:-1], self.target_dims)

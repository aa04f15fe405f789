"""IDDPM-respaced sampling tables and one reverse step (ancestral DDPM with learned-range variance, or DDIM).

The released decoder samples with IDDPM's respacing: of the T training steps it keeps ``S`` evenly spaced ones
(``round(i * (T - 1) / (S - 1))`` accumulated as a float, so the first and last are 0 and T - 1), and rebuilds the
betas between kept steps as ``1 - abar_k / abar_{k-1}``; the network still sees the original timestep. All tables
are computed in float64 and used in fp32, as in IDDPM (numpy float64 tables read as fp32).
"""
from typing import Dict, List, Optional

import torch


def respaced_timesteps(num_train_timesteps: int, num_steps: int) -> List[int]:
    """The training timesteps kept by IDDPM's ``space_timesteps(T, [S])``, ascending.

    Args:
        num_train_timesteps: T.
        num_steps: S, 1 <= S <= T.

    Returns:
        list[int]: S distinct timesteps in [0, T - 1].

    Raises:
        ValueError: S outside [1, T].
    """
    if not 1 <= num_steps <= num_train_timesteps:
        raise ValueError(f'num_inference_steps must be in [1, {num_train_timesteps}] (the training steps), got '
                         f'{num_steps}.')
    stride = 1.0 if num_steps <= 1 else (num_train_timesteps - 1) / (num_steps - 1)
    kept, position = [], 0.0
    for _ in range(num_steps):
        kept.append(round(position))
        position += stride
    return sorted(set(kept))


def respaced_tables(alphas_cumprod: torch.Tensor, kept: List[int]) -> Dict[str, torch.Tensor]:
    """Reverse-process coefficients of the respaced chain, float64.

    Args:
        alphas_cumprod: (T,) float64 cumulative products of the training schedule.
        kept: Ascending kept timesteps (:func:`respaced_timesteps`).

    Returns:
        dict of (S,) float64 tensors indexed by the respaced step k: ``timestep`` (the original t, long),
        ``alphas_cumprod``, ``alphas_cumprod_prev``, ``sqrt_recip_ab``, ``sqrt_recipm1_ab``, ``log_betas``,
        ``post_log_var`` (posterior log-variance with beta~_0 clipped to beta~_1), ``post_coef_x0``,
        ``post_coef_xt``.
    """
    ab = alphas_cumprod.double()[torch.tensor(kept)]
    ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
    betas = 1 - ab / ab_prev
    post_var = betas * (1 - ab_prev) / (1 - ab)
    clipped = torch.cat([post_var[1:2], post_var[1:]]) if len(kept) > 1 else post_var
    return dict(
        timestep=torch.tensor(kept, dtype=torch.long),
        alphas_cumprod=ab,
        alphas_cumprod_prev=ab_prev,
        sqrt_recip_ab=ab.rsqrt(),
        sqrt_recipm1_ab=(1 / ab - 1).sqrt(),
        log_betas=betas.log(),
        post_log_var=clipped.log(),
        post_coef_x0=betas * ab_prev.sqrt() / (1 - ab),
        post_coef_xt=(1 - ab_prev) * (1 - betas).sqrt() / (1 - ab),
    )


def reverse_step(tables: Dict[str, torch.Tensor], k: int, x: torch.Tensor, eps: torch.Tensor, v: torch.Tensor,
                 noise: torch.Tensor, sampler: str = 'ddpm', temperature: float = 1.0, eta: float = 0.0,
                 clip_range: Optional[float] = None) -> torch.Tensor:
    """x_{k-1} from x_k on the respaced chain.

    Args:
        tables: :func:`respaced_tables` output (float64; read as fp32 here).
        k: Respaced step index (S - 1 down to 0).
        x: (N, D) fp32 current sample.
        eps: (N, D) predicted noise.
        v: (N, D) variance interpolation output (ddpm only): log-variance ``(v+1)/2 log beta_k +
            (1-v)/2 log beta~_k``.
        noise: (N, D) standard normal draw for this step (unused at k = 0, as in IDDPM, which still draws it).
        sampler: 'ddpm' (ancestral, learned variance) or 'ddim'.
        temperature: ddpm: factor on the added noise (the release's ``temperature``). Ignored by ddim.
        eta: ddim: 0 deterministic, 1 the DDPM posterior variance.
        clip_range: When set, the predicted x_0 is clamped to [-r, r] (IDDPM's ``clip_denoised``).

    Returns:
        Tensor: (N, D) fp32 x_{k-1} (the final sample at k = 0).
    """
    def at(name: str) -> torch.Tensor:
        return tables[name][k].float().to(x.device)

    x0 = at('sqrt_recip_ab') * x - at('sqrt_recipm1_ab') * eps
    if clip_range is not None:
        x0 = x0.clamp(-clip_range, clip_range)
    nonzero = 1.0 if k > 0 else 0.0
    if sampler == 'ddpm':
        mean = at('post_coef_x0') * x0 + at('post_coef_xt') * x
        frac = (v + 1) / 2
        log_var = frac * at('log_betas') + (1 - frac) * at('post_log_var')
        return mean + nonzero * torch.exp(0.5 * log_var) * noise * temperature
    if sampler == 'ddim':
        ab, ab_prev = at('alphas_cumprod'), at('alphas_cumprod_prev')
        eps = (at('sqrt_recip_ab') * x - x0) / at('sqrt_recipm1_ab')  # re-derived from the (clipped) x_0
        sigma = eta * torch.sqrt((1 - ab_prev) / (1 - ab)) * torch.sqrt(1 - ab / ab_prev)
        mean = x0 * torch.sqrt(ab_prev) + torch.sqrt(1 - ab_prev - sigma**2) * eps
        return mean + nonzero * sigma * noise
    raise ValueError(f"sampler must be 'ddpm' or 'ddim', got {sampler!r}.")

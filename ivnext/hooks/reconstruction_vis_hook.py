"""Stage-1 reconstruction grids (original / masked / reconstructed frames) in the training's visualisation backends.

:class:`ReconstructionVisHook` draws them every ``interval`` iterations through ``runner.visualizer.add_image``
(TensorBoard, W&B and the PNGs of MMEngine's ``LocalVisBackend``). :func:`reconstruction_rows`,
:func:`make_grid` and :func:`to_uint8` draw one clip; ``tools/visualize_reconstruction.py`` uses them too.
"""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmaction.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ivnext.models.utils import unpatchify
from ivnext.utils.rng_state import capture_rng_state, restore_rng_state

LABEL_WIDTH = 96
ROW_NAMES = ('original', 'masked', 'reconstructed')
MASKED_GREY = 127

Stats = Union[Sequence[float], torch.Tensor]


def to_uint8(clip: torch.Tensor, mean: Stats, std: Stats) -> np.ndarray:
    """Normalised (3, T, H, W) -> uint8 frames (T, H, W, 3)."""
    mean_t = torch.as_tensor(mean, dtype=torch.float32).detach().cpu().reshape(3, 1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32).detach().cpu().reshape(3, 1, 1, 1)
    pixels = (clip.detach().float().cpu() * std_t + mean_t).clamp(0, 255).round().byte()
    return pixels.permute(1, 2, 3, 0).numpy()


def make_grid(rows: Dict[str, np.ndarray], gap: int = 2) -> np.ndarray:
    """Rows of frames (T, H, W, 3) side by side, a label column on the left; RGB uint8."""
    import cv2
    t, h, w, _ = next(iter(rows.values())).shape
    canvas = np.full((len(rows) * (h + gap) + gap, LABEL_WIDTH + t * (w + gap) + gap, 3), 255, np.uint8)
    for r, (name, frames) in enumerate(rows.items()):
        y = gap + r * (h + gap)
        cv2.putText(canvas, name, (4, y + h // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        for i in range(t):
            x = LABEL_WIDTH + gap + i * (w + gap)
            canvas[y:y + h, x:x + w] = frames[i]
    return canvas


def reconstruction_rows(result: Dict[str, torch.Tensor], index: int, patch_size: int, tubelet_size: int,
                        mean: Stats, std: Stats) -> Dict[str, np.ndarray]:
    """The three rows of one clip of a Stage-1 ``reconstruct`` result.

    Args:
        result: ``InternVideoNextStage1.reconstruct`` output: ``mask`` (B, N) with True = masked, ``target`` and
            ``reconstruction`` (B, N, u*p*p*3) normalised pixel patches, ``grid`` (T', H', W').
        index: The clip in the batch.
        patch_size: The encoder's patch size p.
        tubelet_size: The encoder's tubelet size u.
        mean: The data preprocessor's per-channel mean (3,), in 0-255 pixels.
        std: The data preprocessor's per-channel std (3,).

    Returns:
        dict: ``original``, ``masked`` (masked patches grey) and ``reconstructed`` frames, each (T, H, W, 3)
        uint8 RGB.
    """
    grid = tuple(int(g) for g in result['grid'])
    mask = result['mask'][index].view(grid).float()
    mask = mask.repeat_interleave(tubelet_size, 0).repeat_interleave(patch_size, 1)
    mask = mask.repeat_interleave(patch_size, 2).bool().cpu().numpy()  # (T, H, W)
    original = unpatchify(result['target'][index:index + 1], grid, patch_size, tubelet_size)[0]
    recon = unpatchify(result['reconstruction'][index:index + 1], grid, patch_size, tubelet_size)[0]
    frames = to_uint8(original, mean, std)
    masked = frames.copy()
    masked[mask] = MASKED_GREY
    return dict(zip(ROW_NAMES, (frames, masked, to_uint8(recon, mean, std))))


@HOOKS.register_module()
class ReconstructionVisHook(Hook):
    """Every ``interval`` training iterations, Stage-1 reconstructions of a few clips go to the visualizer.

    The first time it draws, the hook keeps ``num_clips`` clips of the current batch and draws those same clips
    with the same mask and sampler noise (a private generator seeded with ``seed``) from then on, so successive
    grids show the decoder learning. The model runs :meth:`InternVideoNextStage1.reconstruct` in eval mode without
    gradients; its train mode and every random state a training step draws from (Python, numpy, torch CPU / CUDA,
    generators owned by the model) are restored afterwards, so the losses of a run are those of the same run
    without the hook. The image (one block of rows per clip: original / masked / reconstructed, frames left to
    right) is logged as ``name`` at step ``iter + 1`` with ``runner.visualizer.add_image``: TensorBoard and W&B
    when those backends are on, PNGs under ``<work_dir>/<timestamp>/vis_data/vis_image/`` with MMEngine's
    ``LocalVisBackend``. The last iteration is always drawn.

    Models without a pixel decoder (Stage 2, alignment-only Stage 1) and models sharded by FSDP are left alone
    (one line in the log). Only the main process draws.

    Args:
        interval: Draw every ``interval`` iterations.
        num_clips: Clips per grid (at most the per-GPU batch size).
        num_inference_steps: Diffusion sampling steps per grid (the linear decoder ignores it).
        sampler: The diffusion head's sampler, 'ddim' (deterministic, good in few steps) or 'ddpm'.
        seed: Seed of the private generator for the mask and the sampler noise.
        name: Image name in the visualisation backends.
    """

    priority = 'NORMAL'

    def __init__(self, interval: int = 1000, num_clips: int = 2, num_inference_steps: int = 10,
                 sampler: str = 'ddim', seed: int = 0, name: str = 'reconstruction') -> None:
        if interval < 1 or num_clips < 1 or num_inference_steps < 1:
            raise ValueError(f'interval, num_clips and num_inference_steps must be >= 1, got {interval}, '
                             f'{num_clips}, {num_inference_steps}')
        if sampler not in ('ddim', 'ddpm'):
            raise ValueError(f"sampler must be 'ddim' or 'ddpm', got {sampler!r}")
        self.interval = interval
        self.num_clips = num_clips
        self.num_inference_steps = num_inference_steps
        self.sampler = sampler
        self.seed = seed
        self.name = name
        self.enabled = True
        self._clips: Optional[List[torch.Tensor]] = None

    def before_train(self, runner) -> None:
        from torch.distributed.fsdp import FullyShardedDataParallel
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'reconstruct') or getattr(model, 'head', None) is None:
            self.enabled = False
            runner.logger.info(f'ReconstructionVisHook: {type(model).__name__} has no pixel decoder to reconstruct '
                               'with; no reconstruction grids.')
        elif isinstance(runner.model, FullyShardedDataParallel):
            self.enabled = False
            runner.logger.info('ReconstructionVisHook: the model is sharded by FSDP; no reconstruction grids.')

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not self.enabled or not is_main_process():
            return
        if not (self.every_n_train_iters(runner, self.interval) or self.is_last_train_iter(runner)):
            return
        if self._clips is None:
            if not data_batch or 'inputs' not in data_batch:
                return
            self._clips = [clip.detach().cpu().clone() for clip in data_batch['inputs'][:self.num_clips]]
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        runner.visualizer.add_image(self.name, self.draw(model, self._clips), step=runner.iter + 1)

    def draw(self, model: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> np.ndarray:
        """The grid of the first ``num_clips`` clips of ``inputs``; random states and train mode left as they were.

        Args:
            model: A Stage-1 model (``InternVideoNextStage1``), unwrapped.
            inputs: Raw clips as a data loader delivers them: uint8 (3, T, H, W) or (M, 3, T, H, W) each.

        Returns:
            np.ndarray: RGB uint8 image (H, W, 3), one block of three rows per clip.
        """
        rng_state = capture_rng_state(model)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                data = model.data_preprocessor(dict(inputs=list(inputs), data_samples=None), False)
                # In the encoder's dtype: bf16 where a strategy casts the whole model (DeepSpeed bf16).
                dtype = next(p.dtype for p in model.backbone.parameters() if p.is_floating_point())
                clips = model.flatten_clips(data['inputs'])[:self.num_clips].to(dtype)
                generator = torch.Generator(device=clips.device).manual_seed(self.seed)
                mask = model.sample_mask(clips, model.teacher_targets(clips), generator=generator)
                result = model.reconstruct(clips, num_inference_steps=self.num_inference_steps,
                                           generator=generator, mask=mask, sampler=self.sampler)
        finally:
            model.train(was_training)
            restore_rng_state(rng_state, model)
        pre = model.data_preprocessor
        normalised = getattr(pre, '_enable_normalize', False)
        mean = pre.mean.flatten()[:3] if normalised else (0., 0., 0.)
        std = pre.std.flatten()[:3] if normalised else (1., 1., 1.)
        backbone = model.backbone
        blocks = [make_grid(reconstruction_rows(result, i, backbone.patch_size, backbone.tubelet_size, mean, std))
                  for i in range(clips.shape[0])]
        return np.concatenate(blocks, axis=0)

"""What a Stage-1 model reconstructs: original / masked / reconstructed frames of one clip as a PNG grid.

The clip is read with the config's ``val_pipeline`` (or ``test_pipeline``; without either, with decord and a plain
resize to the encoder's size and frame count), normalised by the model's data preprocessor, masked by the
model's masker (semantic-aware masks need the teacher) and decoded by its pixel head (diffusion sampling with
``steps`` steps, or the linear head). The library side of ``tools/visualize_reconstruction.py``.
"""
import os
import os.path as osp
from typing import Optional

import numpy as np
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

import ivnext.datasets  # noqa: F401  (the pipeline transforms of the config)
from ivnext.hooks.reconstruction_vis_hook import make_grid, reconstruction_rows
from ivnext.utils.checkpoint import load_weights


def load_model(cfg: Config, checkpoint: str, device: str, trusted: bool = False,
               partial: bool = False) -> torch.nn.Module:
    """Build the Stage-1 model of ``cfg`` and load ``checkpoint`` (teachers keep their own weights).

    The checkpoint is read weights-only unless ``trusted``; keys that do not fit the model stop the tool unless
    ``partial`` (then they are named in a warning).

    Raises:
        CheckpointMismatchError: Keys do not fit and ``partial`` is False.
    """
    model = MODELS.build(cfg.model)
    if not hasattr(model, 'reconstruct'):
        raise TypeError(f'{type(model).__name__} has no reconstruct(); use a Stage-1 (InternVideoNextStage1) config')
    model.init_weights()
    load_weights(model, checkpoint, 'partial' if partial else 'strict', prefixes=('module.',), trusted=trusted,
                 opt_in='--trust-checkpoint', partial_opt_in='--partial-load')
    return model.to(device).eval()


def read_clip(cfg: Config, model: torch.nn.Module, video: str) -> torch.Tensor:
    """Uint8 clip (1, 3, T, H, W) or (1, M, 3, T, H, W) ready for the data preprocessor."""
    pipeline = cfg.get('val_pipeline') or cfg.get('test_pipeline')
    if pipeline:
        data = Compose(pipeline)(dict(filename=video, label=-1, start_index=0, modality='RGB'))
        return data['inputs'].unsqueeze(0)
    import cv2
    import decord
    reader = decord.VideoReader(video)
    t = model.backbone.grid_size[0] * model.backbone.tubelet_size
    size = model.backbone.grid_size[1] * model.backbone.patch_size
    index = np.linspace(0, len(reader) - 1, t).round().astype(int)
    frames = [cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in reader.get_batch(index).asnumpy()]
    return torch.from_numpy(np.stack(frames)).permute(3, 0, 1, 2).unsqueeze(0)


def visualize(cfg: Config, checkpoint: str, video: str, out: str, steps: Optional[int] = None, seed: int = 0,
              device: str = 'cpu', trusted: bool = False, partial: bool = False) -> np.ndarray:
    """Write the grid PNG to ``out`` and return it (RGB uint8)."""
    import cv2
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    torch.manual_seed(seed)
    model = load_model(cfg, checkpoint, device, trusted, partial)
    data = model.data_preprocessor(dict(inputs=[read_clip(cfg, model, video)[0]], data_samples=None), False)
    clips = model.flatten_clips(data['inputs'])[:1]
    generator = torch.Generator(device=clips.device).manual_seed(seed)
    torch.manual_seed(seed)
    result = model.reconstruct(clips, num_inference_steps=steps, generator=generator)
    pre = cfg.model.data_preprocessor
    mean, std = pre.get('mean', (0., 0., 0.)), pre.get('std', (1., 1., 1.))
    rows = reconstruction_rows(result, 0, model.backbone.patch_size, model.backbone.tubelet_size, mean, std)
    grid_img = make_grid(rows)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    if not cv2.imwrite(out, cv2.cvtColor(grid_img, cv2.COLOR_RGB2BGR)):
        raise OSError(f'could not write {out}')
    return grid_img

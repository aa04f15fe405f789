"""What a Stage-1 model reconstructs: original / masked / reconstructed frames of one clip as a PNG grid.

The clip is read with the config's ``val_pipeline`` (or ``test_pipeline``; without either, with decord and a plain
resize to the encoder's size and frame count), normalised by the model's data preprocessor, masked by the
model's masker (semantic-aware masks need the teacher) and decoded by its pixel head (diffusion sampling with
``steps`` steps, or the linear head). The library side of ``tools/visualize_reconstruction.py``.
"""
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

import ivnext.datasets  # noqa: F401  (the pipeline transforms of the config)
from ivnext.models.utils import unpatchify
from ivnext.utils.checkpoint import (CheckpointMismatchError, fit_report, format_fit_report, read_state_dict,
                                     strip_prefixes)

LABEL_WIDTH = 96
ROW_NAMES = ('original', 'masked', 'reconstructed')


def load_model(cfg: Config, checkpoint: str, device: str, trusted: bool = False,
               partial: bool = False) -> torch.nn.Module:
    """Build the Stage-1 model of ``cfg`` and load ``checkpoint`` (teachers keep their own weights).

    The checkpoint is read weights-only unless ``trusted``; keys that do not fit the model stop the tool unless
    ``partial``.
    """
    model = MODELS.build(cfg.model)
    if not hasattr(model, 'reconstruct'):
        raise TypeError(f'{type(model).__name__} has no reconstruct(); use a Stage-1 (InternVideoNextStage1) config')
    model.init_weights()
    expected = model.state_dict()
    state = strip_prefixes(read_state_dict(checkpoint, trusted, opt_in='--trust-checkpoint'), expected.keys(),
                           prefixes=('module.',))
    report = fit_report(expected, state)
    if any(report.values()):
        message = format_fit_report(checkpoint, report, '--partial-load')
        if not partial:
            raise CheckpointMismatchError(message)
        print(f'warning: {message}')
    model.load_state_dict({k: v for k, v in state.items() if k in expected and v.shape == expected[k].shape},
                          strict=False)
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


def to_uint8(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Normalised (3, T, H, W) -> uint8 frames (T, H, W, 3)."""
    mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1, 1)
    pixels = (clip.float().cpu() * std_t + mean_t).clamp(0, 255).round().byte()
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
    backbone = model.backbone
    p, u, grid = backbone.patch_size, backbone.tubelet_size, tuple(result['grid'])
    mask = result['mask'][0].view(grid).float()
    mask = mask.repeat_interleave(u, 0).repeat_interleave(p, 1).repeat_interleave(p, 2).bool()  # (T, H, W)
    original = unpatchify(result['target'], grid, p, u)[0]
    recon = unpatchify(result['reconstruction'], grid, p, u)[0]
    pre = cfg.model.data_preprocessor
    mean, std = pre.get('mean', (0., 0., 0.)), pre.get('std', (1., 1., 1.))
    frames = to_uint8(original, mean, std)
    masked = frames.copy()
    masked[mask.cpu().numpy()] = 127
    rows = dict(zip(ROW_NAMES, (frames, masked, to_uint8(recon, mean, std))))
    grid_img = make_grid(rows)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    if not cv2.imwrite(out, cv2.cvtColor(grid_img, cv2.COLOR_RGB2BGR)):
        raise OSError(f'could not write {out}')
    return grid_img

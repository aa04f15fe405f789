"""Calibration readers for probe tables: how hard is the task, and how much do the tokens hold?

Every probe table of the demo states, next to the attentive probes on each encoder's frozen tokens:

* ``linear probe`` rows on the same tokens (a multinomial logistic regression on pooled features: the mean token,
  and the per-frame mean tokens concatenated in time order), so the attentive probe can be checked against the
  simplest reader of the same tokens;
* ``teacher`` rows: the same logistic regression on the frozen image teacher's own per-frame features (CLS and
  mean patch token of its last layer: averaged over frames for appearance, concatenated in time order for motion),
  the ceiling Stage 1 distils from;
* ``raw pixels`` rows: the logistic regression on the frames downsampled to 16 x 16 and concatenated in time
  order, the floor any learnt representation should beat.

The logistic regression is full-batch L-BFGS on standardised features with a fixed L2 penalty (no selection on
the validation split).
"""
from typing import Dict

import torch
import torch.nn.functional as F


def logistic_regression(train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor,
                        l2: float = 1e-3, max_iter: int = 100) -> Dict[str, float]:
    """Multinomial logistic regression on fixed features.

    Args:
        train_x: (N, D) training features.
        train_y: (N,) labels.
        val_x: (M, D) validation features.
        val_y: (M,) labels.
        l2: Penalty on the squared weights (mean cross-entropy + l2 * |W|^2).
        max_iter: L-BFGS iterations.

    Returns:
        dict: ``top1`` and ``train_top1`` (fractions).
    """
    train_x, val_x = train_x.float(), val_x.float()
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    train_x, val_x = (train_x - mean) / std, (val_x - mean) / std
    num_classes = int(max(train_y.max(), val_y.max())) + 1
    weight = torch.zeros(train_x.shape[1], num_classes, requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, line_search_fn='strong_wolfe',
                            tolerance_grad=1e-7, tolerance_change=1e-9)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(train_x @ weight + bias, train_y) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        top1 = float(((val_x @ weight + bias).argmax(-1) == val_y).float().mean())
        train_top1 = float(((train_x @ weight + bias).argmax(-1) == train_y).float().mean())
    return dict(top1=top1, train_top1=train_top1)


def pooled_token_features(tokens: torch.Tensor, num_cls: int, frames: int) -> Dict[str, torch.Tensor]:
    """Pooled features of encoder tokens for the linear probe rows.

    Args:
        tokens: (N, num_cls + T*h*w, C) frozen tokens.
        num_cls: CLS tokens at the front.
        frames: T (token frames).

    Returns:
        dict: ``mean`` (N, C) mean patch token; ``frames`` (N, T*C) per-frame mean patch tokens in time order.
    """
    patches = tokens[:, num_cls:].float()
    n, length, c = patches.shape
    per_frame = patches.reshape(n, frames, length // frames, c).mean(2)
    return dict(mean=patches.mean(1), frames=per_frame.flatten(1))


def teacher_frame_features(teacher: torch.nn.Module, clips: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """The image teacher's own per-frame features: CLS and mean patch token of its last layer.

    Args:
        teacher: A built :class:`~ivnext.models.teachers.hf_image_teacher.HFImageTeacher`.
        clips: (N, 3, T, H, W) clips normalised as the student's input.
        batch_size: Clips per teacher call.

    Returns:
        Tensor: (N, T, 2 * C_t).
    """
    out = []
    p0 = teacher.num_prefix_tokens
    with torch.no_grad():
        for chunk in clips.split(batch_size):
            b, _, t = chunk.shape[:3]
            hidden, _ = teacher._run_model(teacher.preprocess(chunk))
            hidden = hidden.float()
            feats = torch.cat([hidden[:, 0], hidden[:, p0:].mean(1)], -1)
            out.append(feats.view(b, t, -1))
    return torch.cat(out)


def load_clips(cfg, split: str) -> torch.Tensor:
    """Every clip of the config's ``{split}_dataloader`` through its pipeline, normalised as the model's input.

    Args:
        cfg: A probe config (``model.data_preprocessor`` holds mean / std).
        split: 'train' or 'val'.

    Returns:
        Tensor: (N, 3, T, H, W) float32, in loader order (the order of the annotation list).
    """
    from mmaction.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    dataset = DATASETS.build(cfg[f'{split}_dataloader'].dataset.copy())
    pre = cfg.model.data_preprocessor
    mean = torch.tensor(pre.mean, dtype=torch.float32).view(3, 1, 1, 1)
    std = torch.tensor(pre.std, dtype=torch.float32).view(3, 1, 1, 1)
    clips = []
    for i in range(len(dataset)):
        x = dataset[i]['inputs'].float()  # (1, 3, T, H, W)
        clips.append((x[0] - mean) / std)
    return torch.stack(clips)


def pixel_features(clips: torch.Tensor, side: int = 16) -> torch.Tensor:
    """Frames downsampled to ``side`` x ``side``, concatenated in time order: (N, T*3*side*side)."""
    n, c, t, h, w = clips.shape
    frames = clips.transpose(1, 2).reshape(n * t, c, h, w).float()
    small = F.adaptive_avg_pool2d(frames, side)
    return small.reshape(n, -1)


__all__ = ('load_clips', 'logistic_regression', 'pixel_features', 'pooled_token_features', 'teacher_frame_features')

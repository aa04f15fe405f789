"""Probes on cached frozen-encoder tokens: extract once, train the probe head (or a sweep of heads) on them.

A probe config (e.g. ``configs/demo/ivnext_demo_probe.py``) is an ordinary ``FrozenBackboneRecognizer3D`` config.
With a frozen backbone and a deterministic pipeline, the backbone's tokens of a clip are the same in every epoch,
so they are computed once per encoder and split (:func:`extract_tokens`) and the config's head
(``AttentiveProbeHead``, ``LinearProbeHead`` or a ``ProbeSweepHead`` of them) is trained on them with the
config's optimizer, batch size, epochs and cosine schedule (:func:`train_probe`). The leaderboard
(:mod:`ivnext.evaluation.leaderboard`) and the demo use it.

An attentive probe's training cost is dominated by the key/value projection of every token of every clip in every
epoch. Each training batch can therefore attend to a random subset of ``probe_train_tokens`` tokens per clip (a
fresh subset every step, the same count for every clip); evaluation attends to all tokens. Attention pooling is a
weighted average, so it takes any number of tokens. A linear probe's pooling has no parameters, so its cached tokens are
pooled once, before the first epoch.
"""
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

import ivnext  # noqa: F401  (compat fixes and registration, before mmengine and mmaction2)
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from ivnext.evaluation.selection import select_setting
from ivnext.models.heads.linear_probe_head import LinearProbeHead
from ivnext.models.heads.probe_sweep_head import ProbeSweepHead


def read_labels(ann_file: str) -> Dict[str, int]:
    """``{relative path: label}`` of an mmaction2 ``path label`` list."""
    labels = {}
    with open(ann_file) as f:
        for line in f:
            fields = line.split()
            if fields:
                labels[fields[0]] = int(fields[1])
    return labels


def extract_tokens(cfg: Config, checkpoint: Optional[str], split: str, seed: int = 0) -> Dict:
    """Frozen encoder tokens of every clip of the config's ``{split}_dataloader``.

    Args:
        cfg: Probe config (``model.backbone`` is the encoder, ``{split}_dataloader`` the clips).
        checkpoint: Encoder / training checkpoint, or None for the randomly initialised encoder (seeded).
        split: 'train' or 'val'.
        seed: Seed of the random initialisation when ``checkpoint`` is None.

    Returns:
        dict: ``tokens`` (N, num_cls + T'H'W', C) float32, ``filenames`` (N,) absolute paths in loader order.
    """
    from ivnext.api import extract_dataset as extract
    torch.manual_seed(seed)
    out = extract(cfg.copy(), checkpoint, mode='tokens', split=split, average_views=True)
    return dict(tokens=out['features'], filenames=out['filenames'])


def labels_for(filenames: Sequence[str], data_root: str, ann_file: str) -> torch.Tensor:
    """Labels (N,) of ``filenames`` (absolute or ``data_root``-relative) read from another list of the same clips."""
    table = read_labels(ann_file)
    labels = []
    for name in filenames:
        rel = osp.relpath(name, data_root)
        if rel not in table:
            raise KeyError(f'{rel} is not listed in {ann_file}; the label lists of one split must hold the same clips')
        labels.append(table[rel])
    return torch.tensor(labels, dtype=torch.long)


def train_probe(cfg: Config, num_classes: int, train_x: torch.Tensor, train_y: torch.Tensor,
                val_x: torch.Tensor, val_y: torch.Tensor, seed: int = 0,
                train_tokens: Optional[int] = None, test_x: Optional[torch.Tensor] = None,
                test_y: Optional[torch.Tensor] = None) -> Dict:
    """Train the config's ``AttentiveProbeHead`` on cached tokens and measure top-1 on the val tokens.

    The optimizer (``optim_wrapper.optimizer``, AdamW), batch size (``train_dataloader.batch_size``), epochs
    (``train_cfg.max_epochs``), the per-iteration cosine decay to ``param_scheduler[0].eta_min`` and the head's
    label smoothing all come from ``cfg``. The reported accuracy is the last epoch's. A ``ProbeSweepHead`` trains
    all its heads on the same batches (one AdamW parameter group per head with its lr / weight decay; a value missing
    from a head's settings is the optimizer's) and reports the setting selected on val by
    :func:`~ivnext.evaluation.selection.select_setting` (heads of equal settings are init replicas; with one head
    per setting: the head with the best val top-1, ties to the lowest index).

    Args:
        cfg: Probe config.
        num_classes: Classes of the label kind.
        train_x: (N, L, C) training tokens.
        train_y: (N,) training labels.
        val_x: (M, L, C) validation tokens.
        val_y: (M,) validation labels.
        seed: Seed of the head's initialisation, of the batch order and of the token subsets.
        train_tokens: Tokens per clip in each training step (a random subset); None or >= L: all of them.
        test_x: (K, L, C) held-out test tokens, or None; never used for the selection.
        test_y: (K,) test labels.

    Returns:
        dict: ``top1``, ``train_top1`` and with a test split ``test_top1`` (fractions; for a sweep the means over
        the selected setting's heads, with ``top1_std`` / ``test_top1_std`` their population std), ``final_loss``;
        for a sweep also ``settings``, ``head_top1`` / ``head_train_top1`` (every head's val / train top-1),
        ``selected`` (the selected setting's head indices) and ``best_head`` (its first head, the one that predicts).
    """
    init_default_scope('mmaction')
    torch.manual_seed(seed)
    head_cfg = cfg.model.cls_head.copy()
    head_cfg.num_classes = num_classes
    head = MODELS.build(head_cfg)
    head.init_weights()
    opt_cfg = dict(cfg.optim_wrapper.optimizer)
    opt_type = opt_cfg.pop('type')
    if opt_type != 'AdamW':
        raise ValueError(f'the cached-feature probe uses AdamW; optim_wrapper.optimizer.type is {opt_type!r}')
    sweep = isinstance(head, ProbeSweepHead)
    # A ProbeSweepHead trains its heads together, one parameter group per head with its own lr / weight decay.
    optimizer = torch.optim.AdamW(head.param_groups() if sweep else head.parameters(), **opt_cfg)
    epochs = int(cfg.train_cfg.max_epochs)
    batch = int(cfg.train_dataloader.batch_size)
    steps_per_epoch = math.ceil(len(train_x) / batch)
    total = epochs * steps_per_epoch
    eta_min = float(cfg.param_scheduler[0].get('eta_min', 0.0)) if cfg.get('param_scheduler') else 0.0
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=eta_min)
    generator = torch.Generator().manual_seed(seed)
    smoothing = float(getattr(head.heads[0] if sweep else head, 'label_smooth_eps', 0.0) or 0.0)
    num_tokens = train_x.shape[1]
    keep = num_tokens if not train_tokens or train_tokens >= num_tokens else int(train_tokens)
    slots = getattr(head.heads[0] if sweep else head, 'time_slots', 1)
    if keep < num_tokens and slots > 1:
        raise ValueError(f'probe_train_tokens={train_tokens} picks random tokens, which breaks the frame-wise pooling '
                         f'of time_slots={slots}; set probe_train_tokens=None or time_slots=1')
    # A linear probe's pooling has no parameters: pool every cached clip once instead of in every step (the same
    # features; every head of a sweep shares one layout).
    singles = list(head.heads) if sweep else [head]
    if keep == num_tokens and all(isinstance(h, LinearProbeHead) for h in singles) and \
            len({(h.num_cls_tokens, h.time_slots, h.spatial_cells, h.with_prefix) for h in singles}) == 1:
        pooled = lambda x: None if x is None else torch.cat([singles[0].pool(c) for c in x.split(256)])  # noqa: E731
        train_x, val_x, test_x = pooled(train_x), pooled(val_x), pooled(test_x)
    head.train()
    loss = torch.tensor(float('nan'))
    for _ in range(epochs):
        order = torch.randperm(len(train_x), generator=generator)
        for idx in order.split(batch):
            x = train_x[idx]
            if keep < num_tokens:
                subset = torch.rand(len(idx), num_tokens, generator=generator).argsort(-1)[:, :keep]
                x = x.gather(1, subset.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
            logits = head(x)  # (B, K), or (N, B, K) for N sweep heads: the sum of their mean losses
            if sweep:
                loss = sum(F.cross_entropy(scores, train_y[idx], label_smoothing=smoothing) for scores in logits)
            else:
                loss = F.cross_entropy(logits, train_y[idx], label_smoothing=smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    head.eval()

    def predict(x: torch.Tensor) -> torch.Tensor:  # (M,) or (N, M) for N sweep heads
        with torch.no_grad():
            return torch.cat([head(chunk).argmax(-1) for chunk in x.split(64)], -1)

    def top1(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (pred == y).float().mean(-1)

    has_test = test_x is not None
    val_acc, train_acc = top1(predict(val_x), val_y), top1(predict(train_x), train_y)
    test_acc = top1(predict(test_x), test_y) if has_test else None
    if not sweep:
        out = dict(top1=float(val_acc), train_top1=float(train_acc), final_loss=float(loss.detach()))
        if has_test:
            out['test_top1'] = float(test_acc)
        return out
    selected = select_setting(head.settings, val_acc.tolist())
    head.select(selected[0])
    pick = torch.tensor(selected)
    out = dict(top1=float(val_acc[pick].mean()), top1_std=float(val_acc[pick].std(unbiased=False)),
               train_top1=float(train_acc[pick].mean()), final_loss=float(loss.detach()),
               head_top1=val_acc.tolist(), head_train_top1=train_acc.tolist(), selected=selected,
               best_head=selected[0], settings=head.settings)
    if has_test:
        out.update(test_top1=float(test_acc[pick].mean()), test_top1_std=float(test_acc[pick].std(unbiased=False)))
    return out


def summarize(results: List[Dict[str, float]]) -> Dict[str, float]:
    """Mean, std, min and max of ``top1`` over probe seeds (plus the mean train top-1)."""
    acc = torch.tensor([r['top1'] for r in results], dtype=torch.float64)
    return dict(top1=float(acc.mean()), top1_std=float(acc.std(unbiased=False)), top1_min=float(acc.min()),
                top1_max=float(acc.max()), train_top1=float(sum(r['train_top1'] for r in results) / len(results)),
                seeds=len(results), per_seed=[r['top1'] for r in results])

"""Log values kept on the device until the next logging point, then read back in one transfer.

MMEngine hands every step's loss values and gradient norm to its ``MessageHub`` as Python floats, which reads them
back from the GPU (a host-device sync) every iteration. :class:`LazyRuntimeInfoHook` turns that into one read per
logging interval: while it is active, :func:`defer_scalar` queues a detached tensor and :func:`flush_scalars`
materialises the queue in order, so the message hub ends up with exactly the values, counts and order it would
have had.
"""
from typing import List, Tuple

import torch
from mmengine.logging import MessageHub

_PENDING: List[Tuple[str, torch.Tensor]] = []
_ACTIVE = [False]


def set_deferred_logging(active: bool) -> None:
    """Turn deferral on (a :class:`LazyRuntimeInfoHook` is running) or off."""
    _ACTIVE[0] = bool(active)


def deferred_logging_active() -> bool:
    """Whether scalars are queued rather than logged at once."""
    return _ACTIVE[0]


def defer_scalar(message_hub: MessageHub, key: str, value: torch.Tensor) -> None:
    """Log ``value`` under ``key``: queued when deferral is on, at once otherwise.

    Args:
        message_hub: The runner's message hub.
        key: Scalar name, e.g. ``'train/loss'``.
        value: One-element tensor (any dtype and device).
    """
    if not deferred_logging_active():
        message_hub.update_scalar(key, value)
        return
    _PENDING.append((key, value.detach().reshape(())))


def num_pending() -> int:
    """Scalars queued since the last flush."""
    return len(_PENDING)


def flush_scalars(message_hub: MessageHub) -> int:
    """Hand every queued scalar to ``message_hub`` in queue order, with one host read per device.

    Returns:
        int: Number of scalars flushed.
    """
    if not _PENDING:
        return 0
    pending = list(_PENDING)
    _PENDING.clear()
    values: List[float] = [0.0] * len(pending)
    by_device = {}
    for i, (_, value) in enumerate(pending):
        by_device.setdefault(value.device, []).append(i)
    for indices in by_device.values():
        stacked = torch.stack([pending[i][1].to(torch.float64) for i in indices]).tolist()
        for i, v in zip(indices, stacked):
            values[i] = v
    for (key, _), value in zip(pending, values):
        message_hub.update_scalar(key, value)
    return len(pending)

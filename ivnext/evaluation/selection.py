"""The selection rule of a probe sweep: which head's (or which setting's) accuracy is reported.

A sweep (:class:`~ivnext.models.heads.probe_sweep_head.ProbeSweepHead`) trains heads that differ in learning rate,
weight decay and random initialisation. Heads with the same (lr, weight decay) are replicas of one *setting*: they
differ only in their initialisation, so their spread is the probe's own noise. The rule:

* the selected setting is the one with the highest mean validation top-1 over its heads; ties go to the setting
  whose first head comes first;
* its heads' mean (and, with several replicas, the population std) is reported, on the validation split and on a
  held-out test split when there is one (the test split plays no part in the choice).

With one head per setting this is :func:`~ivnext.models.heads.probe_sweep_head.select_best` (highest top-1, ties to
the lowest index).
"""
from typing import Dict, List, Sequence

SELECTION_RULE = ('setting (lr, weight decay) with the best mean val top-1 over its heads, ties to the first; '
                  'its heads differ only in their random init')


def group_settings(settings: Sequence[Dict[str, float]]) -> List[List[int]]:
    """Head indices grouped by equal settings, in order of each setting's first head.

    Args:
        settings: Per-head ``dict(lr=..., weight_decay=...)`` in head order.

    Returns:
        list: One list of head indices per distinct setting.
    """
    groups: Dict[tuple, List[int]] = {}
    for i, s in enumerate(settings):
        groups.setdefault(tuple(sorted(s.items())), []).append(i)
    return list(groups.values())


def select_setting(settings: Sequence[Dict[str, float]], val_top1: Sequence[float]) -> List[int]:
    """Heads of the selected setting (see the module's rule).

    Args:
        settings: Per-head settings, N of them.
        val_top1: Per-head validation top-1, N of them.

    Returns:
        list: Indices of the selected setting's heads, ascending.
    """
    if len(settings) != len(val_top1) or not settings:
        raise ValueError(f'select_setting needs one val top-1 per head: {len(settings)} settings, '
                         f'{len(val_top1)} accuracies')
    groups = group_settings(settings)
    means = [sum(val_top1[i] for i in g) / len(g) for g in groups]
    best = max(means)
    return groups[means.index(best)]


__all__ = ('SELECTION_RULE', 'group_settings', 'select_setting')

"""The paper's reported attentive-probe top-1 (%), with the table each number comes from.

InternVideo-Next (arXiv 2512.01342 v2), Table 1: frozen encoder, one attentive probe, 16 frames x 224 px,
1 clip x 3 crops at test. Only the Stage-2 ViT-B and ViT-L encoders are released
(``revliter/internvideo_next_{base,large}_p14_res224_f16``); the other rows are the same table's Stage-1 ViT-B and
the baselines it compares against. These numbers are reported, not measured: the leaderboard prints them in their
own column (:mod:`ivnext.evaluation.leaderboard`) and never in a measured one.
"""
from typing import Dict, Optional

SOURCE = 'arXiv 2512.01342 v2, Table 1'
PROTOCOL = 'attentive probe, frozen encoder, 16 frames x 224 px, 1 clip x 3 crops'

# model key -> (description, released weights or None, {task: top-1 %})
PAPER_RESULTS: Dict[str, Dict] = {
    'internvideo-next-b-stage2': dict(
        model='InternVideo-Next ViT-B/14, Stage 2', weights='revliter/internvideo_next_base_p14_res224_f16',
        top1=dict(K400=85.9, SSv2=70.1, COIN=91.4)),
    'internvideo-next-l-stage2': dict(
        model='InternVideo-Next ViT-L/14, Stage 2', weights='revliter/internvideo_next_large_p14_res224_f16',
        top1=dict(K400=88.4, SSv2=73.0, COIN=93.6)),
    'internvideo-next-b-stage1': dict(model='InternVideo-Next ViT-B/14, Stage 1', weights=None,
                                      top1=dict(K400=84.8, SSv2=58.6, COIN=89.9)),
    'vjepa2-l': dict(model='V-JEPA 2 ViT-L', weights=None, top1=dict(K400=83.3, SSv2=72.0, COIN=85.9)),
    'videomaev2-l': dict(model='VideoMAE v2 ViT-L', weights=None, top1=dict(K400=80.9, SSv2=54.9, COIN=83.2)),
}


def paper_top1(model: str, task: str) -> Optional[float]:
    """The paper's top-1 (%) of ``model`` on ``task``, or None when the paper reports none.

    Args:
        model: A key of :data:`PAPER_RESULTS` (e.g. ``'internvideo-next-b-stage2'``).
        task: A task name of that entry (``'K400'``, ``'SSv2'``, ``'COIN'``).

    Raises:
        KeyError: ``model`` is not a key of :data:`PAPER_RESULTS` (the message lists them).
    """
    if model not in PAPER_RESULTS:
        raise KeyError(f'paper model {model!r} is unknown; choose from {sorted(PAPER_RESULTS)} '
                       '(ivnext/evaluation/paper_results.py)')
    return PAPER_RESULTS[model]['top1'].get(task)


__all__ = ('PAPER_RESULTS', 'PROTOCOL', 'SOURCE', 'paper_top1')

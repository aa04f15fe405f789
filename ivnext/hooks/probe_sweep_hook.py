"""Each probe head's validation top-1, the best head selected and saved: the reporting side of a probe sweep."""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

import torch
from mmaction.registry import HOOKS
from mmengine.dist import all_reduce, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ivnext.datasets.skip_bad_clips import PLACEHOLDER_KEY
from ivnext.models.heads.probe_sweep_head import SCORES_FIELD, ProbeSweepHead, select_best

REPORT_NAME = 'probe_sweep.json'
BEST_HEAD_NAME = 'best_probe_head.pth'


@HOOKS.register_module()
class ProbeSweepHook(Hook):
    """Top-1 of every head of a :class:`ProbeSweepHead` on the validation (and test) split; selects the best.

    After each validation: every head's top-1 is logged (``sweep/head_XX_top1``), the best head is selected by
    :func:`select_best` (highest top-1, ties to the lowest index) and becomes the predicting head (the head's
    ``selected`` buffer, saved in checkpoints), ``sweep/best_top1`` and ``sweep/best_head`` join the validation
    metrics (``CheckpointHook(save_best='sweep/best_top1')`` keeps the best checkpoint), and, on the main process,
    ``<work_dir>/probe_sweep.json`` records every validation (each head's settings and top-1, the selected head)
    while ``<work_dir>/best_probe_head.pth`` holds the selected head's weights under ``cls_head.`` (they load into
    a single-head probe config of the same head type with ``load_from``). Test runs log each head's top-1 too,
    without changing the selection.
    """

    priority = 'NORMAL'  # before the LoggerHook and the CheckpointHook, which read the added metrics

    def __init__(self) -> None:
        self.correct: Optional[torch.Tensor] = None
        self.count = 0
        self.history: List[Dict] = []

    @staticmethod
    def sweep_head(runner) -> ProbeSweepHead:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        head = getattr(model, 'cls_head', None)
        if not isinstance(head, ProbeSweepHead):
            raise TypeError(f'ProbeSweepHook needs model.cls_head to be a ProbeSweepHead, got {type(head).__name__}')
        return head

    def _reset(self) -> None:
        self.correct, self.count = None, 0

    def _collect(self, outputs: Optional[Sequence]) -> None:
        for sample in outputs or []:
            if sample.metainfo.get(PLACEHOLDER_KEY, False) or SCORES_FIELD not in sample:
                continue
            scores = sample.get(SCORES_FIELD)  # (N, K)
            label = sample.gt_label.view(-1)[:1].to(scores.device)
            hits = (scores.argmax(-1) == label).double().cpu()
            self.correct = hits if self.correct is None else self.correct + hits
            self.count += 1

    def _top1(self, head: ProbeSweepHead) -> List[float]:
        device = head.selected.device
        correct = self.correct.to(device) if self.correct is not None else torch.zeros(head.num_heads, device=device,
                                                                                         dtype=torch.double)
        count = torch.tensor([float(self.count)], device=device, dtype=torch.double)
        all_reduce(correct)
        all_reduce(count)
        if count.item() == 0:
            raise RuntimeError('ProbeSweepHook saw no validation sample with sweep scores; is model.cls_head a '
                               'ProbeSweepHead and the val loader non-empty?')
        return (correct / count).tolist()

    def before_val_epoch(self, runner) -> None:
        self._reset()

    def before_test_epoch(self, runner) -> None:
        self._reset()

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._collect(outputs)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._collect(outputs)

    def _log(self, runner, mode: str, top1: List[float], metrics: Optional[Dict]) -> None:
        for i, acc in enumerate(top1):
            runner.message_hub.update_scalar(f'{mode}/sweep/head_{i:02d}_top1', acc)
            if metrics is not None:
                metrics[f'sweep/head_{i:02d}_top1'] = acc

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        head = self.sweep_head(runner)
        top1 = self._top1(head)
        best = select_best(top1)
        head.select(best)
        self._log(runner, 'val', top1, metrics)
        for key, value in (('sweep/best_top1', top1[best]), ('sweep/best_head', best)):
            runner.message_hub.update_scalar(f'val/{key}', value)
            if metrics is not None:
                metrics[key] = value
        record = dict(epoch=runner.epoch, iter=runner.iter, selected=best, best_top1=top1[best],
                      heads=[dict(index=i, top1=acc, **head.settings[i]) for i, acc in enumerate(top1)])
        self.history.append(record)
        runner.logger.info('probe sweep (val top-1): ' + ', '.join(
            f'{i:02d} {acc:.4f}{" *" if i == best else ""}' for i, acc in enumerate(top1)) +
            f'; selected head {best} ({head.settings[best]})')
        if is_main_process():
            with open(osp.join(runner.work_dir, REPORT_NAME), 'w') as f:
                json.dump(dict(rule='highest validation top-1 at the latest validation; ties to the lowest index',
                               selected=best, settings=head.settings, validations=self.history), f, indent=2)
            state = {f'cls_head.{k}': v.detach().cpu() for k, v in head.selected_head.state_dict().items()}
            torch.save(dict(state_dict=state, meta=dict(head=best, top1=top1[best], **head.settings[best])),
                       osp.join(runner.work_dir, BEST_HEAD_NAME))

    def after_test_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        head = self.sweep_head(runner)
        self._log(runner, 'test', self._top1(head), metrics)

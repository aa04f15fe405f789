"""Count, log and cap the bad clips that :class:`ivnext.datasets.SkipBadClips` skipped."""
from typing import Dict, Optional, Sequence

from mmaction.registry import HOOKS
from mmengine.dist import all_gather_object
from mmengine.hooks import Hook

from ivnext.datasets.skip_bad_clips import BAD_CLIPS_KEY


@HOOKS.register_module()
class BadClipHook(Hook):
    """Counts the bad clips reported in each batch, logs them and stops a run that has too many.

    The count of distinct bad files goes to the training log every interval (``bad_clips``) and, for validation
    and testing, into the metrics of the run (``bad_clips/<mode>``) with the file list in the log. When the bad
    files of a split exceed ``max_bad_fraction`` of its samples, the run stops with the list.

    Args:
        max_bad_fraction: Ceiling of bad files per split as a fraction of its samples (default 1%).
        min_bad_clips: Bad files always tolerated, whatever the split size (small lists).
    """

    priority = 'NORMAL'  # before the LoggerHook, so the counts are in the logged line

    def __init__(self, max_bad_fraction: float = 0.01, min_bad_clips: int = 10) -> None:
        if not 0.0 <= max_bad_fraction <= 1.0:
            raise ValueError(f'max_bad_fraction must be in [0, 1], got {max_bad_fraction}')
        self.max_bad_fraction = max_bad_fraction
        self.min_bad_clips = min_bad_clips
        self.bad: Dict[str, Dict[str, str]] = dict(train={}, val={}, test={})

    def _collect(self, runner, mode: str, data_batch: Optional[dict]) -> None:
        samples = (data_batch or {}).get('data_samples') or []
        found = self.bad[mode]
        for sample in samples:
            for failure in getattr(sample, 'metainfo', {}).get(BAD_CLIPS_KEY, ()):
                path = failure.split(': ', 1)[0]
                if path not in found:
                    found[path] = failure
        dataset = getattr(runner, f'{mode}_dataloader').dataset
        limit = max(self.min_bad_clips, int(self.max_bad_fraction * len(dataset)))
        if len(found) > limit:
            raise RuntimeError(
                f'{len(found)} bad clips in the {mode} split of {len(dataset)} samples exceed the ceiling of {limit} '
                f'(max_bad_fraction={self.max_bad_fraction}); fix or remove these files:\n'
                + '\n'.join(found.values()))

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        self._collect(runner, 'train', data_batch)
        runner.message_hub.update_scalar('train/bad_clips', len(self.bad['train']))

    def after_val_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                       outputs: Optional[Sequence] = None) -> None:
        self._collect(runner, 'val', data_batch)

    def after_test_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                        outputs: Optional[Sequence] = None) -> None:
        self._collect(runner, 'test', data_batch)

    def _summary(self, runner, mode: str, metrics: Optional[dict]) -> None:
        merged = {}
        for part in all_gather_object(self.bad[mode]):
            merged.update(part)
        if merged:
            runner.logger.warning(f'{len(merged)} bad clips left out of the {mode} split:\n' + '\n'.join(
                merged[path] for path in sorted(merged)))
        if metrics is not None:
            if merged and not any(key.endswith('/bad_clips') or key == 'bad_clips' for key in metrics):
                runner.logger.warning(
                    f'the {mode} evaluator scored the stand-ins of {len(merged)} bad clips: wrap it as '
                    f"{mode}_evaluator = dict(type='SkipBadClipsMetric', metric=<your metric>) to leave them out")
            metrics[f'bad_clips/{mode}'] = len(merged)
        self.bad[mode] = {}

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._summary(runner, 'val', metrics)

    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._summary(runner, 'test', metrics)

    def after_train(self, runner) -> None:
        if self.bad['train']:
            runner.logger.warning(f"{len(self.bad['train'])} bad clips were skipped in training:\n"
                                  + '\n'.join(self.bad['train'][p] for p in sorted(self.bad['train'])))

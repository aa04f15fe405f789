"""Bad clips (missing, empty, truncated, undecodable files) are skipped, named and counted instead of ending a job.

:class:`SkipBadClips` wraps any dataset. When loading a sample raises, it logs the file and the reason and
returns another sample instead: in training a random other index (a real replacement), in testing the next
readable clip marked as a placeholder (``data_samples.metainfo['bad_clip_placeholder']``), which
:class:`SkipBadClipsMetric` leaves out of the scores. Every returned sample carries the bad files met while
loading it (``metainfo['bad_clips']``, ``'path: reason'`` strings), so the counts reach the main process through
the batch, from data-loader workers and every rank alike; :class:`ivnext.hooks.BadClipHook` counts, logs and
applies the ceiling.

Before a clip is loaded its file must be a regular file (a FIFO would make the decoder wait for a writer
forever), and loading runs under a watchdog: a clip that takes longer than ``decode_timeout`` seconds is skipped
and named like any bad clip while the job goes on.
"""
import copy
import random
import threading
from typing import Any, Callable, Dict, List, Optional, Union

from mmaction.registry import DATASETS, METRICS
from mmengine.dataset import BaseDataset
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ivnext.video.readers import NotRegularFileError, regular_file_problem

BAD_CLIPS_KEY = 'bad_clips'
PLACEHOLDER_KEY = 'bad_clip_placeholder'


class ClipTimeoutError(TimeoutError):
    """Loading one clip took longer than the watchdog allows."""


def call_with_timeout(func: Callable[[], Any], timeout: Optional[float], what: str) -> Any:
    """``func()``, or :class:`ClipTimeoutError` once it has run ``timeout`` seconds (None: no limit).

    ``func`` runs in a daemon thread; a call that never returns (a decoder stuck in C code cannot be interrupted)
    is left behind in that thread and the caller goes on.
    """
    if timeout is None:
        return func()
    outcome: Dict[str, Any] = {}

    def target() -> None:
        try:
            outcome['value'] = func()
        except BaseException as err:  # noqa: BLE001  (re-raised in the caller's thread)
            outcome['error'] = err

    thread = threading.Thread(target=target, name=f'load {what}', daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise ClipTimeoutError(f'loading took more than {timeout:g} s (decode_timeout); the clip was abandoned')
    if 'error' in outcome:
        raise outcome['error']
    return outcome['value']


def describe_failure(path: str, err: BaseException) -> str:
    """``'path: ErrorType: message'`` on one line."""
    message = ' '.join(str(err).split())[:300]
    return f'{path}: {type(err).__name__}: {message}'


@DATASETS.register_module()
class SkipBadClips:
    """Dataset wrapper that replaces samples whose clip cannot be opened or decoded.

    The wrapped dataset's arguments sit next to ``wraps``, so config paths stay those of mmaction2
    (``train_dataloader.dataset.ann_file``, ``...dataset.datasets.0.ann_file`` for a ``ConcatDataset``)::

        dataset=dict(type='SkipBadClips', wraps='VideoDataset', ann_file=..., data_prefix=..., pipeline=...)

    Args:
        wraps: Registered type of the wrapped dataset (``VideoDataset``, ``KMashVideoDataset``,
            ``ConcatDataset``, ...), or a built dataset.
        max_retries: Consecutive unreadable clips tolerated for one sample before giving up with the list.
        decode_timeout: Seconds one clip may take to load (open, decode, transform) before it is skipped as bad;
            None for no limit.
        **dataset_kwargs: Arguments of the wrapped dataset. Its ``test_mode`` (default False) also selects
            placeholder replacements (left out of the scores) instead of random ones.
    """

    def __init__(self, wraps: Union[str, BaseDataset], max_retries: int = 20, decode_timeout: Optional[float] = 120.0,
                 **dataset_kwargs: Any) -> None:
        if isinstance(wraps, str):
            self.dataset = DATASETS.build(dict(type=wraps, **dataset_kwargs))
        elif dataset_kwargs:
            raise TypeError(f'SkipBadClips got a built dataset and arguments {sorted(dataset_kwargs)}; pass either')
        else:
            self.dataset = wraps
        if max_retries < 0:
            raise ValueError(f'max_retries must be >= 0, got {max_retries}')
        self.max_retries = max_retries
        if decode_timeout is not None and not decode_timeout > 0:
            raise ValueError(f'decode_timeout must be > 0 seconds or None, got {decode_timeout}')
        self.decode_timeout = decode_timeout
        self.test_mode = bool(getattr(self.dataset, 'test_mode', dataset_kwargs.get('test_mode', False)))
        self._metainfo = getattr(self.dataset, 'metainfo', {})

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self._metainfo)

    def full_init(self) -> None:
        """Initialise the wrapped dataset (it may have been built with ``lazy_init=True``)."""
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()

    def __getattr__(self, name: str) -> Any:
        # Attributes of the wrapped dataset (``ann_file``, ``data_list``, ...) read through the wrapper.
        if name == 'dataset':
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def get_data_info(self, idx: int) -> dict:
        return self.dataset.get_data_info(idx)

    def __len__(self) -> int:
        return len(self.dataset)

    def clip_path(self, idx: int) -> str:
        """The file of sample ``idx`` (``filename`` / ``frame_dir``), or ``'sample <idx>'``."""
        try:
            info = self.dataset.get_data_info(idx)
        except Exception:  # noqa: BLE001  (naming the sample must never fail)
            return f'sample {idx}'
        return str(info.get('filename') or info.get('frame_dir') or f'sample {idx}')

    def __getitem__(self, idx: int) -> Dict[str, Any]:
        bad: List[str] = []
        index = idx
        for _ in range(self.max_retries + 1):
            try:
                data = self._load(index)
            except Exception as err:  # noqa: BLE001  (any failure to read a clip is skipped and reported)
                failure = describe_failure(self.clip_path(index), err)
                print_log(f'bad clip skipped: {failure}', logger='current', level=30)
                bad.append(failure)
                index = (index + 1) % len(self) if self.test_mode else random.randrange(len(self))
                continue
            self._annotate(data, bad, placeholder=self.test_mode and index != idx)
            return data
        raise RuntimeError(f'{len(bad)} clips in a row could not be read (max_retries={self.max_retries}); the '
                           'data or its decoder is broken:\n' + '\n'.join(bad))

    def _load(self, index: int) -> Dict[str, Any]:
        """Sample ``index``: its file checked first (regular files only), then loaded under the watchdog."""
        try:
            filename = self.dataset.get_data_info(index).get('filename')
        except Exception:  # noqa: BLE001  (the load below reports it)
            filename = None
        if isinstance(filename, str) and '://' not in filename:  # video files (frame folders are not checked)
            problem = regular_file_problem(filename)
            if problem is not None and problem != 'does not exist':  # missing files fail in the pipeline, as before
                raise NotRegularFileError(f'{problem}; only regular files are read')
        return call_with_timeout(lambda: self.dataset[index], self.decode_timeout, self.clip_path(index))

    @staticmethod
    def _annotate(data: Dict[str, Any], bad: List[str], placeholder: bool) -> None:
        sample = data.get('data_samples') if isinstance(data, dict) else None
        if sample is None or not hasattr(sample, 'set_metainfo'):
            return
        sample.set_metainfo({BAD_CLIPS_KEY: list(bad), PLACEHOLDER_KEY: placeholder})


@METRICS.register_module()
class SkipBadClipsMetric(BaseMetric):
    """Evaluate ``metric`` on every sample but :class:`SkipBadClips` placeholders, and count them.

    Placeholders are kept through the distributed collection (every rank keeps the same number of results, as
    MMEngine requires) and dropped just before ``metric.compute_metrics``. The result adds ``bad_clips``: the
    number of test clips left out.

    Args:
        metric: The metric config, e.g. ``dict(type='AccMetric')``.
    """

    def __init__(self, metric: dict, collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        self.metric = METRICS.build(metric)
        super().__init__(collect_device=collect_device, prefix=prefix or self.metric.prefix)

    @property
    def dataset_meta(self) -> Optional[dict]:
        return self.metric.dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict) -> None:
        self.metric.dataset_meta = dataset_meta

    def process(self, data_batch: Any, data_samples: List[dict]) -> None:
        for sample in data_samples:
            start = len(self.metric.results)
            self.metric.process(data_batch, [sample])
            placeholder = bool(sample.get(PLACEHOLDER_KEY, False))
            self.results.extend((placeholder, result) for result in self.metric.results[start:])
            del self.metric.results[start:]

    def compute_metrics(self, results: List) -> Dict[str, Any]:
        kept = [result for placeholder, result in results if not placeholder]
        metrics = self.metric.compute_metrics(kept)
        metrics['bad_clips'] = len(results) - len(kept)
        return metrics

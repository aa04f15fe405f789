"""K-Mash style pretraining lists: mmaction2 video lists whose lines may carry a time window."""
from typing import Dict, List

from mmaction.datasets import VideoDataset
from mmaction.registry import DATASETS, TRANSFORMS
from mmcv.transforms import BaseTransform

from .video_list import read_video_list


@DATASETS.register_module()
class KMashVideoDataset(VideoDataset):
    """mmaction2 ``VideoDataset`` whose lines may restrict sampling to a time window of the video.

    Each line is ``path label`` (the whole video, mmaction2's format) or ``path label start end total``: seconds
    ``[start, end]`` of a video lasting ``total`` seconds (trimmed ActivityNet / HACS segments in K-Mash), or the
    path alone (label ``-1``: pretraining needs no labels). Errors name ``file:line``. The
    window is stored as ``time_window=(start, end, total)`` and applied by :class:`TemporalWindow` once the
    video's frame count is known (after ``DecordInit``). ``tools/data/convert_kmash_list.py`` writes these lists.

    Args:
        **kwargs: See mmaction2's ``VideoDataset`` (``ann_file``, ``pipeline``, ``data_prefix``, ...).
    """

    def load_data_list(self) -> List[dict]:
        """Parse ``path``, ``path label`` and ``path label start end total`` lines."""
        rows = read_video_list(self.ann_file, self.delimiter, self.data_prefix['video'], self.num_classes,
                               label_required=False, field_counts=(2, 5),
                               line_format='"path", "path label" or "path label start end total"')
        data_list = []
        for where, path, label, window in rows:
            info = dict(filename=path, label=label)
            if window:
                try:
                    info['time_window'] = tuple(float(v) for v in window)
                except ValueError:
                    raise ValueError(f'{where}: start, end and total must be numbers (seconds), got {window}') from None
            data_list.append(info)
        return data_list


@TRANSFORMS.register_module()
class TemporalWindow(BaseTransform):
    """Restrict frame sampling to ``results['time_window'] = (start, end, total)`` seconds.

    Put it after ``DecordInit`` and before the frame sampler. As in the authors' K-Mash loader, the frame rate is
    taken as ``total_frames / total`` and the window becomes ``start_index += int(fps * start)``,
    ``total_frames = int(fps * (end - start))`` (at least 1, clipped to the video). Samples without a window, or
    with a negative field (the release's "-1 = whole video"), pass through unchanged.

    Required keys: ``total_frames``, ``start_index``. Optional: ``time_window``.
    Modified keys: ``total_frames``, ``start_index``.
    """

    def transform(self, results: Dict) -> Dict:
        window = results.get('time_window')
        if window is None:
            return results
        start, end, total = window
        if start < 0 or end < 0 or total <= 0:
            return results
        if end <= start:
            raise ValueError(f"time_window of {results.get('filename')}: end {end} must be after start {start}")
        frames = int(results['total_frames'])
        fps = frames / total
        first = min(int(fps * start), frames - 1)
        results['start_index'] = int(results.get('start_index', 0)) + first
        results['total_frames'] = max(1, min(int(fps * (end - start)), frames - first))
        return results

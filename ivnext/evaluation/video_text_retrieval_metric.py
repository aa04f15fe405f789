"""Text-to-video and video-to-text retrieval metrics (R@1/5/10, median and mean rank)."""
from collections import OrderedDict
from typing import Dict, List, Sequence

import numpy as np
from mmaction.evaluation import RetrievalMetric
from mmaction.registry import METRICS

METRICS_NAMES = ('R1', 'R5', 'R10', 'MdR', 'MnR')


def retrieval_metrics(similarity: np.ndarray, metric_list: Sequence[str] = METRICS_NAMES) -> Dict[str, float]:
    """Recall at K and ranks of the ground truth on the diagonal of a query x gallery similarity matrix.

    The rank of query ``i``'s match ``i`` is 1 + the number of gallery items scored strictly higher (ties count
    in the query's favour).

    Args:
        similarity: (Q, Q) scores; row ``i`` is a query, column ``i`` its one correct item.
        metric_list: Names among 'R1', 'R5', 'R10' (percent), 'MdR', 'MnR' (1-based ranks).

    Returns:
        dict: ``{name: value}``.
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(f'similarity must be a square (queries x items) matrix, got shape {similarity.shape}')
    diagonal = np.diag(similarity)[:, None]
    ranks = (similarity > diagonal).sum(1) + 1
    out = OrderedDict()
    for name in metric_list:
        if name in ('R1', 'R5', 'R10'):
            out[name] = float(np.mean(ranks <= int(name[1:])) * 100)
        elif name == 'MdR':
            out[name] = float(np.median(ranks))
        elif name == 'MnR':
            out[name] = float(np.mean(ranks))
        else:
            raise ValueError(f'unknown retrieval metric {name!r}; choose from {METRICS_NAMES}')
    return out


@METRICS.register_module()
class VideoTextRetrievalMetric(RetrievalMetric):
    """mmaction2's :class:`RetrievalMetric` reporting both directions: ``t2v/R1`` ... and ``v2t/R1`` ....

    Each evaluated sample is one video with its one caption (or paragraph: DiDeMo and ActivityNet Captions join a
    video's captions), read from ``features.video_feature`` / ``features.text_feature``; features are L2
    normalised and compared by cosine similarity.

    Args:
        metric_list: Names among 'R1', 'R5', 'R10', 'MdR', 'MnR'.
        collect_device: 'cpu' or 'gpu' for collecting results across ranks.
        prefix: Prefix of the metric names (default 'retrieval').
    """

    def compute_metrics(self, results: List) -> Dict:
        video = np.stack([r['video_feature'] for r in results]).astype(np.float64)
        text = np.stack([r['text_feature'] for r in results]).astype(np.float64)
        video /= np.linalg.norm(video, axis=-1, keepdims=True)
        text /= np.linalg.norm(text, axis=-1, keepdims=True)
        similarity = text @ video.T
        out = OrderedDict()
        for direction, sim in (('t2v', similarity), ('v2t', similarity.T)):
            for name, value in retrieval_metrics(sim, self.metric_list).items():
                out[f'{direction}/{name}'] = value
        return out

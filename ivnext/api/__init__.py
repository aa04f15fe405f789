"""The public Python API: load an encoder, encode videos, extract windowed features for folders of videos
or features of a config's dataset split.

Example::

    import ivnext
    encoder = ivnext.load_encoder('internvideo-next-base')          # from the local Hugging Face cache
    out = encoder.encode('video.mp4', stride=1.0, stride_unit='seconds')
    out.features, out.starts, out.ends                                # (W, 768), (W,), (W,)
"""
from .dataset_extraction import extract_dataset, save_features
from .aligner import Aligner, load_aligner
from .encoder import Preprocessing, VideoEncoder, VideoFeatures
from .extraction import ExtractionSummary, SettingsChangedError, extract_videos, list_videos
from .hub import resolve_hub_id
from .loading import PRESETS, load_encoder

__all__ = ['Preprocessing', 'VideoEncoder', 'VideoFeatures', 'ExtractionSummary', 'SettingsChangedError',
           'extract_videos', 'list_videos', 'extract_dataset', 'save_features', 'resolve_hub_id', 'PRESETS',
           'load_encoder']
__all__ += ['Aligner', 'load_aligner']

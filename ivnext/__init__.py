"""ivnext: InternVideo-Next video foundation models as MMEngine / mmaction2 plugins."""
import warnings as _warnings

from .compat import IMPORT_WARNINGS as _IMPORT_WARNINGS

with _warnings.catch_warnings():
    # Third-party warnings that importing mmaction2 raises and that say nothing about ivnext's use of it (see
    # ivnext.compat.IMPORT_WARNINGS). Filtered only while ivnext imports; the user's own filters stay as they are.
    for _category, _message in _IMPORT_WARNINGS:
        _warnings.filterwarnings('ignore', message=_message, category=_category)
    from .compat import apply_all as _apply_compat
    from .compat import patch_mmengine_package_configs as _patch_package_configs

    _apply_compat()
    _patch_package_configs()

    from . import models  # noqa: E402,F401  (registers every module into mmaction2's registries)
    from . import engine  # noqa: E402,F401  (optimizer constructors)
    from . import hooks  # noqa: E402,F401  (runner hooks)
    from . import datasets  # noqa: E402,F401  (K-Mash dataset and transforms)
    from . import video  # noqa: E402,F401  (VideoInit / VideoDecode: decord, PyAV, torchcodec)
    from .evaluation import video_text_retrieval_metric  # noqa: E402,F401  (the retrieval metric)
    from . import registry  # noqa: E402,F401  (the `ivnext` scope of `ivnext::` configs)
from .version import __version__  # noqa: E402

# The public API, imported on first use so that `import ivnext` stays light.
_API = ('load_encoder', 'VideoEncoder', 'VideoFeatures', 'Preprocessing', 'extract_videos')
_API += ('load_aligner', 'Aligner')


def __getattr__(name: str):
    if name in _API:
        from . import api
        return getattr(api, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = ['__version__', *_API]

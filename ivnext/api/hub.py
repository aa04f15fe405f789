"""Hugging Face Hub ids resolved to local folders, offline first."""
import os
import re
from typing import Optional

HUB_ID = re.compile(r'^[A-Za-z0-9][\w.-]*/[\w.-]+$')


def looks_like_hub_id(source: str) -> bool:
    """True for ``owner/name`` strings (checked only after a local path of that name was not found)."""
    return bool(HUB_ID.match(source)) and '..' not in source


def hub_cache_dir(cache_dir: Optional[str] = None) -> str:
    """The cache folder huggingface_hub reads (``cache_dir``, else ``HF_HUB_CACHE`` / ``HF_HOME``'s default)."""
    if cache_dir is not None:
        return str(cache_dir)
    from huggingface_hub import constants
    return str(constants.HF_HUB_CACHE)


def resolve_hub_id(repo_id: str, revision: Optional[str] = None, cache_dir: Optional[str] = None,
                   allow_download: bool = False) -> str:
    """Local snapshot folder of a Hub model repository.

    The local cache is read first (no network). Only with ``allow_download=True`` (and ``HF_HUB_OFFLINE``
    unset) is the repository downloaded when the cache lacks it.

    Args:
        repo_id: ``owner/name``.
        revision: Branch, tag or commit (default: the cached ``main``).
        cache_dir: Hub cache folder (default: huggingface_hub's, i.e. ``$HF_HUB_CACHE`` or
            ``$HF_HOME/hub``).
        allow_download: Download when not cached.

    Returns:
        str: The snapshot folder (``.../models--owner--name/snapshots/<commit>``).

    Raises:
        ImportError: huggingface_hub is not installed (``pip install 'ivnext[hub]'``).
        FileNotFoundError: Not cached and downloading not allowed (or failed); names the id and the cache.
    """
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:
        raise ImportError(f"loading the Hub id {repo_id!r} needs huggingface_hub: pip install 'ivnext[hub]'") from err
    cache = hub_cache_dir(cache_dir)
    try:
        return snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, local_files_only=True)
    except Exception as err:  # LocalEntryNotFoundError and friends: not cached
        cached_error = err
    offline = os.environ.get('HF_HUB_OFFLINE', '0').lower() in ('1', 'true', 'yes', 'on')
    if not allow_download or offline:
        why = 'HF_HUB_OFFLINE is set' if allow_download else 'downloading is off (allow_download=False)'
        raise FileNotFoundError(
            f'Hugging Face model {repo_id!r}{f" (revision {revision})" if revision else ""} is not in the local '
            f'cache {cache} and {why}. Download it once with `huggingface-cli download {repo_id}` (or '
            f'`hf download {repo_id}`; add --cache-dir {cache} if you use a custom cache), or pass '
            f'allow_download=True. ({type(cached_error).__name__})') from cached_error
    try:
        return snapshot_download(repo_id, revision=revision, cache_dir=cache_dir)
    except Exception as err:
        raise FileNotFoundError(f'could not download Hugging Face model {repo_id!r} into {cache}: {err}') from err

"""Reading a model folder's ``config.json`` (ivnext's own folders and transformers' alike)."""
import json
import os.path as osp
from typing import Any, Optional


def read_config_json(folder: str, name: str = 'config.json', hint: str = '') -> Optional[Any]:
    """The parsed ``folder/name``, or None when the folder has no such file.

    Args:
        folder: A model folder.
        name: The file's name inside it.
        hint: Appended to the error message (e.g. ``'; save the encoder again'``).

    Raises:
        ValueError: The file is not UTF-8 JSON (names the file).
    """
    path = osp.join(folder, name)
    if not osp.isfile(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError(f'{path} is not valid UTF-8 JSON ({err}){hint}') from None

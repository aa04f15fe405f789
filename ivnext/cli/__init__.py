"""Command lines whose parsing is part of what they do: ``train`` and ``evaluate`` (``tools/train.py``,
``tools/test.py``: mmaction2-compatible options merged into the runner's config), ``extract_features`` and
``video_list`` (also installed as the console scripts ``ivnext-extract-features`` and ``ivnext-video-list``).
The scripts under ``tools/`` call their ``main``. Not imported by ``import ivnext``."""

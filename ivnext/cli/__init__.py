"""Command-line tools installed as console scripts (``ivnext-extract-features``, ``ivnext-video-list``); the
scripts under ``tools/`` call the same functions."""

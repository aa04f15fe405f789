"""Annotation list from a folder of videos, every file checked (see ivnext/cli/video_list.py; installed as
ivnext-video-list)."""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from ivnext.cli.video_list import *  # noqa: E402,F401,F403
from ivnext.cli.video_list import main  # noqa: E402

if __name__ == '__main__':
    main()

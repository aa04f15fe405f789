"""Annotation list from a folder of videos, every file checked (see ivnext/cli/video_list.py; installed as
ivnext-video-list)."""
import sys

from ivnext.cli.video_list import main

if __name__ == '__main__':
    sys.exit(main())

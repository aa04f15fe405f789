"""Extract InternVideo-Next features (see ivnext/cli/extract_features.py; installed as ivnext-extract-features)."""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from ivnext.cli.extract_features import *  # noqa: E402,F401,F403
from ivnext.cli.extract_features import main  # noqa: E402

if __name__ == '__main__':
    main()

"""Extract InternVideo-Next features (see ivnext/cli/extract_features.py; installed as ivnext-extract-features)."""
import sys

from ivnext.cli.extract_features import main

if __name__ == '__main__':
    sys.exit(main())

"""Extract InternVideo-Next features (see ivnext/cli/extract_features.py; installed as ivnext-extract-features)."""
# `extract` stays importable from here only for tools/demo/cached_probe.py, until that imports the package.
from ivnext.cli.extract_features import extract, main  # noqa: F401

if __name__ == '__main__':
    main()

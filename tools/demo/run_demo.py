"""The whole InternVideo-Next method in miniature on a CPU (see :mod:`ivnext.demo.run` and docs/demo.md).

Example::

    bash tools/run_demo.sh                                            # the full demo into demo_artifacts/
    python tools/demo/run_demo.py --work-dir /tmp/demo --smoke        # tiny sizes, about a minute (CI)
"""
import sys

from ivnext.demo.run import main

if __name__ == '__main__':
    sys.exit(main())

"""Execute notebooks once each, in parallel, and print each one's time.

    python tools/run_notebooks.py book/*.ipynb [--jobs 2] [--cache DIR] [--out DIR]

The same as ``python -m mmbook.execute``: the project's one notebook executor
(see :mod:`mmbook.execute`).
"""

import sys

from mmbook.execute import main

if __name__ == "__main__":
    sys.exit(main())

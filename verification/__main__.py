"""``python -m verification [--quick | --full] [--out DIR] ...`` (the same as ``gsbref verify``)."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m scratchgan.cli``: the same command as ``python -m scratchgan``."""
import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())

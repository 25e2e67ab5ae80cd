"""``python -m scratchgan``: the same command as the ``scratchgan`` console script."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

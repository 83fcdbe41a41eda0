"""``python -m swinir``: the ``swinir`` command (also what ``torchrun -m swinir`` runs)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

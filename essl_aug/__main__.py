"""``python -m essl_aug`` runs the ``essl-aug`` command."""

import sys

from essl_aug.cli import main

if __name__ == "__main__":
    sys.exit(main())

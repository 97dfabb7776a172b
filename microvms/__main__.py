"""``python -m microvms``: the operator CLI."""

import sys

from microvms.cli import main

if __name__ == "__main__":
    sys.exit(main())

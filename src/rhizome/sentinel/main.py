"""Entry point of `rhizome-sentinel` (reserved; the program arrives with issue P2)."""

import sys


def main() -> int:
    print("rhizome-sentinel is not available yet: it arrives with issue P2", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

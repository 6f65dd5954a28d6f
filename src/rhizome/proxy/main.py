"""Entry point of `rhizome-proxy` (reserved; the program arrives with issue P3)."""

import sys


def main() -> int:
    print("rhizome-proxy is not available yet: it arrives with issue P3", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

"""`python -m rhizome.check_config PROGRAM FILE`: check a configuration, run nothing.

PROGRAM is keeper, sentinel, proxy or rhizomectl. Prints nothing and exits 0
when the program would accept the file; otherwise prints the program's own
error (naming the setting and the fix) and exits 2. The Ansible roles run it
before they install a configuration, so a wrong file never replaces a good one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from rhizome.api.config import api_config
from rhizome.config import ConfigError, load_file, store_config
from rhizome.keeper.config import load_configuration
from rhizome.proxy.config import load_proxy_config
from rhizome.sentinel.main import sentinel_id


def check_sentinel(path: str) -> None:
    data = load_file(path)
    store_config(data, path)
    sentinel_id(data, path)
    api_config(data, path, "sentinel")


def check_store_only(path: str) -> None:
    store_config(load_file(path), path)


CHECKS: dict[str, Callable[[str], object]] = {
    "keeper": load_configuration,
    "proxy": load_proxy_config,
    "sentinel": check_sentinel,
    "rhizomectl": check_store_only,
}


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 2 or arguments[0] not in CHECKS:
        print(f"usage: python -m rhizome.check_config {{{','.join(CHECKS)}}} FILE", file=sys.stderr)
        return 2
    program, path = arguments
    try:
        CHECKS[program](str(Path(path)))
    except ConfigError as error:
        print(f"{program}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

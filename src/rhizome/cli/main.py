"""Entry point of `rhizomectl`: parse the command line, run the command, map errors.

Every operator error ends as one line on stderr, `rhizomectl: error: ...`
(a spec's problems follow it, one per line), and an exit code: 0 done,
1 failed or refused, 2 usage or configuration error, 3 store unreachable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rhizome.cli.context import Context, StoreOptions, Terminal, resolve_store_config
from rhizome.cli.errors import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, CliError
from rhizome.cli.parser import Handler, build_parser
from rhizome.config import ConfigError
from rhizome.etcd import EtcdAuthError, EtcdConfigurationError, EtcdError, EtcdUnavailable
from rhizome.spec import SpecError
from rhizome.store.errors import StoreDocumentError, StoreError

EXIT_INTERRUPTED = 130


def error_exit_code(error: Exception) -> int:
    """The exit code of an operator error (see the module documentation)."""
    if isinstance(error, CliError):
        return error.exit_code
    if isinstance(error, ConfigError | SpecError | EtcdConfigurationError | EtcdAuthError):
        return EXIT_USAGE
    if isinstance(error, EtcdError):
        return EXIT_UNREACHABLE
    if isinstance(error, StoreDocumentError):
        return EXIT_FAILED
    return EXIT_USAGE  # StoreError: an invalid cluster or keeper name


def error_message(error: Exception, options: StoreOptions) -> str:
    """The text after `rhizomectl: error: `."""
    if isinstance(error, SpecError):
        return "\n  ".join([str(error).splitlines()[0], *error.problems])
    if isinstance(error, EtcdUnavailable):
        where = "the --endpoints given" if options.endpoints else "the configured endpoints"
        return f"the store is unreachable: {error}; check that etcd runs at {where}"
    return str(error)


def run(arguments: argparse.Namespace) -> int:
    """Open the store from the global options and run the chosen command's handler."""
    options = StoreOptions(
        arguments.config, arguments.endpoints, arguments.cluster, arguments.etcd_api
    )
    local = getattr(arguments, "local_handler", None)  # a command that needs no store
    try:
        if local is not None:
            return int(local(Terminal(out=sys.stdout, err=sys.stderr), arguments))
        store = resolve_store_config(options).open()
        context = Context(store=store, out=sys.stdout, err=sys.stderr)
        handler: Handler = arguments.handler
        return handler(context, arguments)
    except (CliError, ConfigError, SpecError, EtcdError, StoreError) as error:
        print(f"rhizomectl: error: {error_message(error, options)}", file=sys.stderr)
        return error_exit_code(error)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as request:  # --help, or a usage error argparse has reported
        return request.code if isinstance(request.code, int) else EXIT_USAGE
    if arguments.handler is None and getattr(arguments, "local_handler", None) is None:
        arguments.command_parser.print_usage(sys.stderr)
        prog = arguments.command_parser.prog
        print(f"rhizomectl: error: choose a command ({prog} --help lists them)", file=sys.stderr)
        return EXIT_USAGE
    try:
        return run(arguments)
    except KeyboardInterrupt:
        print("rhizomectl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (rhizomectl status | head)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())

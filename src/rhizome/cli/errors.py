"""Errors rhizomectl reports to the operator, each with its exit code.

| exit code | meaning |
|---|---|
| 0 | done |
| 1 | the operation failed or was refused (the store is fine) |
| 2 | usage or configuration error: nothing was attempted |
| 3 | the store (etcd) could not be reached or failed the request |
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


class CliError(Exception):
    """An error with a one-line message for the operator and an exit code."""

    exit_code = EXIT_FAILED


class OperationRefused(CliError):
    """The request makes no sense in the cluster's current situation; nothing was written."""


class OperationFailed(CliError):
    """The request was attempted and did not succeed."""


class UsageError(CliError):
    """The command line or an input file is unusable; nothing was attempted."""

    exit_code = EXIT_USAGE


class StoreUnreachable(CliError):
    """The store could not be reached (e.g. while waiting for a command's result)."""

    exit_code = EXIT_UNREACHABLE

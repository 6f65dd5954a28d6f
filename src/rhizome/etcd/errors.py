"""Errors raised by the etcd client.

Every message says what failed and what the operator can do about it. No
message ever contains a password or an authentication token.
"""


class EtcdError(Exception):
    """Base class of every etcd client error."""


class EtcdConfigurationError(EtcdError, ValueError):
    """The client settings are unusable (a malformed endpoint, a missing file)."""


class EtcdUnavailable(EtcdError):
    """No endpoint answered: all refused, timed out or failed the TLS handshake."""


class EtcdAuthError(EtcdError):
    """etcd refused our credentials or our permissions."""


class EtcdRequestError(EtcdError):
    """etcd answered the request with an error."""

    def __init__(self, message: str, code: int = 0) -> None:
        self.code = code
        super().__init__(message)


class EtcdLeaseExpired(EtcdError):
    """The lease no longer exists: it expired or was revoked."""

    def __init__(self, lease_id: int) -> None:
        self.lease_id = lease_id
        super().__init__(f"etcd lease {lease_id:x} has expired or was revoked")

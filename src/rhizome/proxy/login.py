"""Whether a forwarded session is still logging in, from what the server sends.

Before a planned switchover the proxies hold new read-write connections and
wait for the logins already under way to finish, so that cutting the old
master's connections fails no client in the middle of its login. The server
ends a login with ReadyForQuery ('Z') or an ErrorResponse ('E'). Before its
first message it may answer an encryption request with one byte: 'N' (no,
the login goes on in plain text) or 'S'/'G' (TLS or GSS). The proxy passes
encryption through, so PostgreSQL's certificate and SCRAM channel binding
reach the client unchanged; the rest of an encrypted login cannot be read,
and it counts as under way for ENCRYPTED_LOGIN_WINDOW from the server's 'S'.

Only the first few server messages of a session are read; after that the
session's server side is the plain forwarding pipe again.
"""

from __future__ import annotations

HEADER_SIZE = 5
"""Message type byte and 4-byte length (which counts itself)."""
REFUSED_ENCRYPTION = ord("N")
ENCRYPTION_ACCEPTED = frozenset(b"SG")
LOGIN_ENDS = frozenset(b"ZE")
ENCRYPTED_LOGIN_WINDOW = 1.0
"""Seconds an encrypted login counts as under way (unless its session closes first).
A TLS handshake and a SCRAM exchange take four to six round trips: milliseconds on
a LAN, well under a second across a region. A switchover's drain waits at most
LOGIN_DRAIN_LIMIT (also 1 s), so a longer window would change nothing."""


class LoginWatch:
    """Reads the server's side of one session until its login ended."""

    __slots__ = ("encrypted", "ending", "finished", "header", "negotiating", "skip")

    def __init__(self) -> None:
        self.negotiating = True
        """No message seen yet: a single byte may answer an encryption request."""
        self.header = bytearray()
        self.skip = 0
        """Body bytes of the current message still to pass over."""
        self.ending = False
        """The current message ends the login (finished once its body has passed)."""
        self.finished = False
        self.encrypted = False
        """The server accepted an encryption request: nothing more can be read."""

    def feed(self, data: bytes) -> bool:
        """Read the next chunk the server sent; True once the login ended."""
        position = 0
        while position < len(data) and not self.finished:
            if self.skip:
                taken = min(self.skip, len(data) - position)
                self.skip -= taken
                position += taken
                self.finished = self.ending and not self.skip
            elif self.negotiating and not self.header and data[position] == REFUSED_ENCRYPTION:
                position += 1
            elif self.negotiating and not self.header and data[position] in ENCRYPTION_ACCEPTED:
                self.finished = self.encrypted = True
            else:
                position = self.read_header(data, position)
        return self.finished

    def read_header(self, data: bytes, position: int) -> int:
        self.negotiating = False
        taken = min(HEADER_SIZE - len(self.header), len(data) - position)
        self.header += data[position : position + taken]
        if len(self.header) == HEADER_SIZE:
            self.ending = self.header[0] in LOGIN_ENDS
            self.skip = max(0, int.from_bytes(self.header[1:], "big") - 4)
            self.header.clear()
            self.finished = self.ending and not self.skip
        return position + taken

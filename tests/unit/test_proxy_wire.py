"""The bits of PostgreSQL's protocol the proxy speaks to clients it holds or refuses."""

from __future__ import annotations

import struct

import pytest

from rhizome.proxy.wire import (
    PacketKind,
    classify_first_packet,
    error_response,
    ssl_request,
    startup_packet,
)

STARTUP = startup_packet({"user": "alice", "database": "shop"})


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", PacketKind.INCOMPLETE),
        (b"\x00\x00\x00", PacketKind.INCOMPLETE),
        (ssl_request(), PacketKind.SSL_REQUEST),
        (struct.pack("!II", 8, 80877104), PacketKind.GSSENC_REQUEST),
        (struct.pack("!III", 16, 80877102, 1) + b"\x00" * 4, PacketKind.CANCEL_REQUEST),
        (STARTUP, PacketKind.STARTUP),
        (STARTUP[:-3], PacketKind.INCOMPLETE),
        (struct.pack("!II", 4, 196608), PacketKind.INVALID),  # shorter than its header
        (struct.pack("!II", 20000, 196608), PacketKind.INVALID),  # longer than PostgreSQL allows
        (struct.pack("!II", 12, 80877103), PacketKind.INVALID),  # an SSLRequest with a body
        (struct.pack("!II", 20, 80877102), PacketKind.INVALID),  # a cancel of the wrong size
        (b"GET / HTTP/1.1\r\n", PacketKind.INVALID),
        (struct.pack("!II", 9, 2 << 16) + b"\x00", PacketKind.INVALID),  # protocol 2
    ],
)
def test_first_packets_are_classified(data, kind):
    assert classify_first_packet(data).kind is kind


def test_complete_packets_report_their_length():
    assert classify_first_packet(ssl_request() + STARTUP).length == 8
    assert classify_first_packet(STARTUP + b"more").length == len(STARTUP)


def test_error_response_is_a_fatal_message_with_sqlstate_and_text():
    message = error_response("rhizome-proxy: no master\0 available", "57P03", detail="wait")
    assert message[:1] == b"E"
    (length,) = struct.unpack("!I", message[1:5])
    assert length == len(message) - 1
    fields = message[5:].split(b"\0")
    assert fields[:5] == [
        b"SFATAL",
        b"VFATAL",
        b"C57P03",
        b"Mrhizome-proxy: no master  available",
        b"Dwait",
    ]
    assert message.endswith(b"\0\0")

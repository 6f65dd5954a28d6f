"""LoginWatch: when the server has ended a session's login, from its bytes alone."""

from __future__ import annotations

import struct

import pytest

from rhizome.proxy.login import LoginWatch


def message(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


AUTHENTICATION_OK = message(b"R", struct.pack("!I", 0))
SCRAM_CHALLENGE = message(b"R", struct.pack("!I", 10) + b"SCRAM-SHA-256\0\0")
PARAMETER = message(b"S", b"server_version\x0015.10\x00")
NOTICE = message(b"N", b"SNOTICE\0Mhello\0\0")
KEY_DATA = message(b"K", struct.pack("!II", 1234, 5678))
READY = message(b"Z", b"I")
LOGIN = AUTHENTICATION_OK + PARAMETER + KEY_DATA + READY


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 1000])
def test_the_login_ends_with_ready_for_query_however_the_bytes_arrive(size: int) -> None:
    watch = LoginWatch()
    results = [watch.feed(chunk) for chunk in chunks(SCRAM_CHALLENGE + LOGIN, size)]
    assert results[-1] and not any(results[:-1])


def test_a_refused_encryption_request_is_passed_over() -> None:
    watch = LoginWatch()
    assert not watch.feed(b"N")  # no TLS: the login goes on in plain text
    assert not watch.feed(b"N")  # no GSS encryption either
    assert not watch.feed(SCRAM_CHALLENGE)
    assert watch.feed(LOGIN)


@pytest.mark.parametrize("answer", [b"S", b"G"])
def test_an_encrypted_login_cannot_be_read_and_is_flagged(answer: bytes) -> None:
    watch = LoginWatch()
    assert watch.feed(answer + b"\x16\x03\x03")
    assert watch.encrypted  # the session times its window instead


def test_a_plain_login_is_not_flagged_encrypted() -> None:
    watch = LoginWatch()
    assert watch.feed(b"N" + LOGIN)
    assert not watch.encrypted


def test_an_error_ends_the_login() -> None:
    watch = LoginWatch()
    assert not watch.feed(SCRAM_CHALLENGE)
    assert watch.feed(message(b"E", b"SFATAL\0C28P01\0Mpassword authentication failed\0\0"))


def test_messages_after_the_first_are_never_taken_for_encryption_answers() -> None:
    watch = LoginWatch()
    assert not watch.feed(AUTHENTICATION_OK + NOTICE + PARAMETER)  # 'N' and 'S' messages
    assert not watch.feed(message(b"S", b"TimeZone\0UTC\0"))
    assert watch.feed(READY)


def test_nothing_is_read_once_the_login_ended() -> None:
    watch = LoginWatch()
    assert watch.feed(LOGIN + message(b"T", b"x" * 3))
    assert watch.feed(b"garbage")

"""Parsing, authentication and routing of the agents' API requests."""

from __future__ import annotations

import pytest

from rhizome.api.requests import Request, answer, json_page, parse, response

ROUTES = {"/health": lambda request: json_page(200, {"query": dict(request.query)})}


def get(path: str, *headers: str) -> bytes:
    return ("\r\n".join([f"GET {path} HTTP/1.1", "Host: x", *headers]) + "\r\n\r\n").encode()


def test_a_request_is_parsed_with_its_query_and_lower_case_headers():
    request = parse(get("/replica?lag=16MB", "Authorization: Bearer abc"))
    headers = {"host": "x", "authorization": "Bearer abc"}
    assert request == Request("GET", "/replica", {"lag": "16MB"}, headers)


@pytest.mark.parametrize(
    ("raw", "status", "says"),
    [
        (b"\x16\x03\x01\x02\x00\x01\x00\r\n\r\n", 400, b"malformed request"),  # TLS to a plain port
        (b"GET /health\r\n\r\n", 400, b"malformed request"),
        (get("/nothing"), 404, b"/health"),
        (b"POST /health HTTP/1.1\r\n\r\n", 405, b"only GET"),
        (get("/health") + b"x" * 9000, 400, b"too large"),
    ],
)
def test_bad_requests_get_a_status_that_names_the_problem(raw, status, says):
    got_status, _, body = answer(raw, ROUTES, token=None)
    assert got_status == status and says in body


def test_with_a_token_every_request_needs_it():
    assert answer(get("/health"), ROUTES, token="s3cret")[0] == 401
    assert answer(get("/health", "Authorization: Bearer wrong"), ROUTES, token="s3cret")[0] == 401
    assert answer(get("/health", "Authorization: Basic s3cret"), ROUTES, token="s3cret")[0] == 401
    assert answer(get("/nothing"), ROUTES, token="s3cret")[0] == 401, "no path is revealed"
    assert answer(get("/health", "Authorization: Bearer s3cret"), ROUTES, token="s3cret")[0] == 200


def test_head_gets_the_status_without_the_body():
    assert answer(b"HEAD /health HTTP/1.1\r\n\r\n", ROUTES, None) == (200, "application/json", b"")


def test_a_401_response_asks_for_a_bearer_token_and_closes():
    text = response((401, "text/plain", b"no\n")).decode()
    assert text.startswith("HTTP/1.1 401 Unauthorized\r\n")
    assert "WWW-Authenticate: Bearer" in text and "Connection: close" in text
    assert text.endswith('Bearer realm="rhizome"\r\nConnection: close\r\n\r\nno\n')

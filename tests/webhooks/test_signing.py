"""The signature a receiver checks: over the timestamp and the exact body, and only for a while."""

from __future__ import annotations

import pytest

from ltxserve.webhooks import InvalidSignature, sign, verify

SECRET = "whsec_test"
BODY = b'{"event":"request.completed"}'


def test_a_signature_verifies_with_its_secret_body_and_time():
    header = sign(SECRET, BODY, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify(SECRET, BODY, header, now=1_700_000_100) == 1_700_000_000


@pytest.mark.parametrize(
    ("secret", "body", "now", "why"),
    [
        ("whsec_other", BODY, 1_700_000_000, "does not match"),
        (SECRET, BODY + b" ", 1_700_000_000, "does not match"),
        (SECRET, BODY, 1_700_000_301, "too far from now"),
    ],
)
def test_another_secret_a_changed_body_or_an_old_delivery_is_refused(secret, body, now, why):
    header = sign(SECRET, BODY, timestamp=1_700_000_000)
    with pytest.raises(InvalidSignature, match=why):
        verify(secret, body, header, now=now)


def test_a_moved_timestamp_breaks_the_signature():
    header = sign(SECRET, BODY, timestamp=1_700_000_000).replace("t=1700000000", "t=1700000200")
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(SECRET, BODY, header, now=1_700_000_200)


@pytest.mark.parametrize("header", ["", "v1=abc", "t=soon,v1=abc"])
def test_a_malformed_header_is_refused(header):
    with pytest.raises(InvalidSignature, match="must be"):
        verify(SECRET, BODY, header)

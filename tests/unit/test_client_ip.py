"""The client's address behind trusted proxies (pure)."""
from ccgate.core.client_ip import client_address, parse_networks

TRUSTED = parse_networks(["127.0.0.1", "10.0.0.0/8"])


def test_headers_count_only_from_a_trusted_peer():
    assert client_address("203.0.113.9", "198.51.100.1", None, TRUSTED) == "203.0.113.9"
    assert client_address("127.0.0.1", "198.51.100.1", None, ()) == "127.0.0.1"  # none trusted


def test_the_right_most_untrusted_hop_wins():
    assert client_address("127.0.0.1", "1.1.1.1, 198.51.100.1, 10.0.0.5", None, TRUSTED) == \
        "198.51.100.1"  # 1.1.1.1 was written by the client itself: not believed
    assert client_address("127.0.0.1", "10.0.0.5", None, TRUSTED) == "10.0.0.5"  # all trusted
    assert client_address("127.0.0.1", "junk, 198.51.100.1", None, TRUSTED) == "198.51.100.1"
    assert client_address("127.0.0.1", "198.51.100.1, junk", None, TRUSTED) == "127.0.0.1"


def test_forwarded_header_when_there_is_no_x_forwarded_for():
    assert client_address("127.0.0.1", None, 'for="[2001:db8::7]:4711";proto=https',
                          TRUSTED) == "2001:db8::7"
    assert client_address("127.0.0.1", None, "for=192.0.2.60:8080, for=10.1.2.3",
                          TRUSTED) == "192.0.2.60"

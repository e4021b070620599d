"""Where a webhook may go: the addresses refused, the URLs refused at registration, pinning."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from services.common.safe_http import (
    Egress,
    UnsafeDestination,
    address_refusal,
    failure_reason,
    numeric_host,
    pin,
    registration_refusal,
)
from services.common.settings import Settings


def answering(*addresses: str, names: dict[str, list[str]] | None = None):  # type: ignore[no-untyped-def]
    """A resolver stub: `addresses` for any host (or `names`' own answer), recording lookups."""
    asked: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return (names or {}).get(host, list(addresses))

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


@pytest.mark.parametrize(("address", "refusal"), [
    ("10.1.2.3", "a private address"), ("172.16.0.1", "a private address"),
    ("192.168.1.1", "a private address"), ("127.0.0.1", "a loopback address"),
    ("127.9.9.9", "a loopback address"), ("169.254.1.1", "a link-local address"),
    ("169.254.169.254", "a cloud metadata address"), ("100.64.0.1", "a non-public address"),
    ("100.100.100.200", "a cloud metadata address"), ("224.0.0.1", "a multicast address"),
    ("0.0.0.0", "an unspecified address"), ("240.0.0.1", "a private address"),
    ("255.255.255.255", "a private address"), ("192.0.2.10", "a private address"),
    ("::1", "a loopback address"), ("::", "an unspecified address"),
    ("fe80::1", "a link-local address"), ("fd12:3456::1", "a private address"),
    ("fc00::1", "a private address"), ("fec0::1", "a site-local address"),
    ("ff02::1", "a multicast address"), ("::ffff:10.0.0.1", "a private address"),
    ("::ffff:127.0.0.1", "a loopback address"),
    ("::ffff:169.254.169.254", "a cloud metadata address"),
    ("fd00:ec2::254", "a cloud metadata address"), ("2001:db8::1", "a private address"),
    ("64:ff9b::a00:1", "a reserved address"),
    ("8.8.8.8", None), ("93.184.216.34", None), ("2606:4700::1111", None),
], ids=lambda v: str(v))
def test_only_public_unicast_addresses_may_be_posted_to(address: str, refusal: str | None
                                                        ) -> None:
    assert address_refusal(ipaddress.ip_address(address)) == refusal


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.53", "::1", "::ffff:127.0.0.1"])
def test_the_flag_lets_loopback_through(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address), allow_loopback=True) is None


@pytest.mark.parametrize("address", ["10.0.0.1", "169.254.169.254", "0.0.0.0", "fd00:ec2::254",
                                     "::ffff:192.168.0.1", "100.64.1.1"])
def test_the_flag_lets_nothing_else_through(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address), allow_loopback=True) is not None


@pytest.mark.parametrize(("host", "address"), [
    ("2130706433", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("127.1", "127.0.0.1"),
    ("017700000001", "127.0.0.1"), ("0xa9fea9fe", "169.254.169.254"),
    ("::ffff:7f00:1", "::ffff:127.0.0.1"), ("hooks.example.test", None), ("localhost", None),
])
def test_a_host_written_as_an_address_is_read_as_the_c_library_reads_it(
    host: str, address: str | None
) -> None:
    assert numeric_host(host) == (ipaddress.ip_address(address) if address else None)


@pytest.mark.parametrize(("url", "without_flag", "with_flag"), [
    ("https://hooks.example/in", None, None),
    ("HTTPS://Hooks.Example:8443/in?x=1", None, None),
    ("http://hooks.example/in", "must be an https URL", "must be an https URL"),
    ("http://127.0.0.1:9000/hook", "must be an https URL", None),
    ("http://localhost:9000/hook", "must be an https URL", None),
    ("http://[::1]:9000/hook", "must be an https URL", None),
    ("http://10.0.0.1/hook", "must be an https URL", "must be an https URL"),
    ("https://localhost/hook", "must not name a loopback address", None),
    ("https://user:pw@hooks.example/", "must not carry credentials",
     "must not carry credentials"),
    ("https://token@hooks.example/", "must not carry credentials",
     "must not carry credentials"),
    ("ftp://hooks.example/", "must be an https URL", "must be an https URL"),
    ("https:///nohost", "must be an https URL", "must be an https URL"),
    ("https://2130706433/", "must not name a loopback address", None),
    ("https://0x7f.1/", "must not name a loopback address", None),
    ("https://[::ffff:127.0.0.1]/", "must not name a loopback address", None),
    ("https://169.254.169.254/latest/meta-data/", "must not name a cloud metadata address",
     "must not name a cloud metadata address"),
    ("https://[fd00:ec2::254]/", "must not name a cloud metadata address",
     "must not name a cloud metadata address"),
    ("https://10.0.0.1/", "must not name a private address", "must not name a private address"),
    ("https://[::ffff:10.0.0.1]/", "must not name a private address",
     "must not name a private address"),
    ("https://100.64.0.1/", "must not name a non-public address",
     "must not name a non-public address"),
], ids=lambda v: str(v))
def test_what_may_be_registered(url: str, without_flag: str | None, with_flag: str | None
                                ) -> None:
    assert registration_refusal(url, allow_loopback=False) == without_flag
    assert registration_refusal(url, allow_loopback=True) == with_flag


async def test_a_name_is_refused_when_any_address_it_resolves_to_is_refused() -> None:
    resolve = answering("93.184.216.34", "10.0.0.7")
    with pytest.raises(UnsafeDestination) as refused:
        await pin("https://hooks.example.test/in", egress=Egress(resolve=resolve))
    assert refused.value.reason == "the host resolves to a private address"
    assert resolve.asked == [("hooks.example.test", 443)]  # type: ignore[attr-defined]
    with pytest.raises(UnsafeDestination, match="resolves to no address"):
        await pin("https://hooks.example.test/in", egress=Egress(resolve=answering()))


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1", "017700000001"])
async def test_decimal_and_octal_forms_resolve_to_loopback_and_are_refused(host: str) -> None:
    # the system resolver reads them the C library's way, without asking the network
    pinned = await pin(f"http://{host}:8080/hook", egress=Egress(allow_loopback=True))
    assert (pinned.url.host, pinned.host_header) == ("127.0.0.1", f"{host}:8080")
    with pytest.raises(UnsafeDestination, match="resolves to a loopback address"):
        await pin(f"https://{host}/hook", egress=Egress())


async def test_the_checked_address_is_connected_to_with_the_hosts_name_kept() -> None:
    target = await pin("https://hooks.example.test:8443/in?x=1",
                       egress=Egress(resolve=answering("2606:4700::1111")))
    assert str(target.url) == "https://[2606:4700::1111]:8443/in?x=1"
    assert (target.host_header, target.sni_hostname) == ("hooks.example.test:8443",
                                                          "hooks.example.test")
    plain = await pin("http://hooks.example.test/in",
                      egress=Egress(allow_loopback=True, resolve=answering("127.0.0.1")))
    assert (str(plain.url), plain.host_header, plain.sni_hostname) == (
        "http://127.0.0.1/in", "hooks.example.test", None)
    literal = await pin("https://93.184.216.34/in", egress=Egress(resolve=answering(
        "93.184.216.34")))
    assert literal.sni_hostname is None  # no SNI for an address; its certificate names it


async def test_plain_http_goes_to_loopback_only_even_with_the_flag() -> None:
    with pytest.raises(UnsafeDestination, match="plain http"):
        await pin("http://localhost/in", egress=Egress(allow_loopback=True,
                                                       resolve=answering("93.184.216.34")))


def test_a_failure_records_why_without_the_url() -> None:
    reason = failure_reason(UnsafeDestination("the host resolves to a private address"))
    assert reason == "refused: the host resolves to a private address"
    assert failure_reason(TimeoutError("https://secret@hooks.example/t0ken")) == "TimeoutError"


def test_loopback_webhooks_are_off_unless_set_and_never_in_production() -> None:
    assert Settings(env="development").webhook_allow_loopback is False
    with pytest.raises(ValidationError, match="DAYBREAK_WEBHOOK_ALLOW_LOOPBACK"):
        Settings(env="production", webhook_allow_loopback=True,
                 child_key_secret="x" * 40, kafka_username="u", kafka_password="p")

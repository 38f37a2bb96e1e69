"""How a client reaches the service: the proxy it goes through and the CAs it trusts.

Both are settled once, when the client is made. A proxy comes from ``proxy=``, else (unless
``trust_env=False``) from the standard ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` and
``NO_PROXY`` variables, as curl and the big HTTP clients read them; a loopback base URL is never
sent through an environment proxy (a proxy cannot reach this machine's loopback). TLS trusts
``ssl_context=``, else the PEM bundle at ``ca_bundle=`` or ``$LUME_CA_BUNDLE`` (which then
replaces the system's CAs), else the system's CAs.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import urllib.request
from urllib.parse import urlsplit

from ._validation import (
    check_ca_bundle,
    check_proxy_route,
    check_proxy_url,
    is_loopback,
    redact_url,
)

__all__ = ["ENV_CA_BUNDLE", "proxy_for", "redact_url", "tls_context"]

ENV_CA_BUNDLE = "LUME_CA_BUNDLE"


def proxy_for(
    base_url: str, *, proxy: str | None, trust_env: bool, allow_insecure_http: bool
) -> str | None:
    """The proxy requests to ``base_url`` go through, or None to connect directly."""
    chosen = check_proxy_url(proxy)
    if chosen is None and trust_env:
        chosen = _env_proxy(base_url)
    check_proxy_route(base_url=base_url, proxy=chosen, allow_insecure_http=allow_insecure_http)
    return chosen


def _env_proxy(base_url: str) -> str | None:
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if is_loopback(host):
        return None
    proxies = urllib.request.getproxies_environment()
    found = proxies.get(parts.scheme) or proxies.get("all")
    if not found:
        return None
    if _bypassed(host.lower(), parts.port, proxies.get("no", "")):
        return None
    if "://" not in found:  # HTTPS_PROXY=proxy:3128, as some set it
        found = f"http://{found}"
    variable = f"{parts.scheme.upper()}_PROXY"
    return check_proxy_url(found, name=f"the proxy in ${variable} or $ALL_PROXY")


def _bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    """NO_PROXY, as curl reads it: ``*``, host names and domain suffixes (``.example.com``),
    with or without a port, and address ranges (``10.0.0.0/8``, ``2001:db8::/32``), separated
    by commas. Trailing dots do not count."""
    host = host.rstrip(".")
    address = _address(host)
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry == "*":
            return True
        if "/" in entry:
            if address is not None and _in_range(address, entry):
                return True
            continue
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and (not entry_port.isdigit() or int(entry_port) != port):
            continue
        name = name.strip("[]").strip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _in_range(address: ipaddress.IPv4Address | ipaddress.IPv6Address, entry: str) -> bool:
    try:
        network = ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return False
    return address.version == network.version and address in network


def tls_context(
    ssl_context: ssl.SSLContext | None, ca_bundle: str | os.PathLike[str] | None
) -> ssl.SSLContext | None:
    """The TLS settings to verify the service with (None: the system's CAs)."""
    path = check_ca_bundle(ca_bundle)
    if ssl_context is not None:
        if path is not None:
            raise TypeError("pass ssl_context or ca_bundle, not both")
        return ssl_context
    name = "ca_bundle"
    if path is None:
        path, name = os.environ.get(ENV_CA_BUNDLE) or None, f"${ENV_CA_BUNDLE}"
    if path is None:
        return None
    try:
        if os.path.isdir(path):
            return ssl.create_default_context(capath=path)
        return ssl.create_default_context(cafile=path)
    except FileNotFoundError:
        raise ValueError(f"{name}: no such file: {path!r}") from None
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"{name}: cannot load CA certificates from {path!r}: {exc}") from None

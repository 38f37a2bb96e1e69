"""A small HTTP forward proxy, run as a process of its own by the network tests.

    python tests/net/_forward_proxy.py [--map NAME=ADDRESS ...] [--auth USER:PASS]

It listens on a free loopback port and prints ``READY <port>``, then one JSON line per request
it relays: ``{"method": "CONNECT", "target": "lume.test:443", "headers": {...}}`` for a tunnel
(it sees nothing inside), or ``{"method": "GET", "target": "http://host:port/path", ...}`` for a
plain-HTTP request in absolute form (it sees the request whole, headers included). ``--map``
resolves a name to an address, so tests can use host names that only the proxy knows: a client
that reaches the service at all went through the proxy. ``--auth`` asks for Basic proxy
credentials (407 without them).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import sys
from urllib.parse import urlsplit


class Proxy:
    def __init__(self, names: dict[str, str], auth: str | None) -> None:
        self.names = names
        self.auth = auth

    async def serve(self) -> None:
        server = await asyncio.start_server(self.accept, "127.0.0.1", 0)
        print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
        async with server:
            await server.serve_forever()

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        print(json.dumps({"method": method, "target": target, "headers": headers}), flush=True)
        if self.auth is not None and not self._authorized(headers):
            writer.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n'
                b"Connection: close\r\n\r\n"
            )
            await writer.drain()
            writer.close()
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            await self.tunnel(reader, writer, host, int(port), b"")
            return
        url = urlsplit(target)
        kept = [
            line
            for line in lines[1:]
            if line and line.split(":")[0].lower() not in ("proxy-authorization", "connection")
        ]
        path = url.path + (f"?{url.query}" if url.query else "")
        request = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""])
        await self.tunnel(reader, writer, url.hostname or "", url.port or 80, request.encode())

    def _authorized(self, headers: dict[str, str]) -> bool:
        given = {k.lower(): v for k, v in headers.items()}.get("proxy-authorization", "")
        return given == "Basic " + base64.b64encode(self.auth.encode()).decode()  # type: ignore[union-attr]

    async def tunnel(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        host: str,
        port: int,
        first: bytes,
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.names.get(host, host), port)
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        if first:
            up_writer.write(first)
        else:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--map", action="append", default=[], help="NAME=ADDRESS")
    parser.add_argument("--auth", help="USER:PASS")
    args = parser.parse_args()
    names = dict(item.split("=", 1) for item in args.map)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(Proxy(names, args.auth).serve())
    sys.exit(0)


if __name__ == "__main__":
    main()

"""Resolving provider names to addresses, for rules that match addresses (nftables) and for
`egress lockdown check`. Every lookup is bounded: a name that does not answer in time counts as
unresolved, and its thread (the system resolver cannot be cancelled) is a daemon that never keeps
the command from exiting."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Lookup:
    name: str
    addresses: tuple[str, ...]  # sorted, de-duplicated; empty when the name did not resolve
    error: str | None = None  # "timeout", or the resolver's message


async def lookup(name: str, timeout_s: float) -> Lookup:
    """The addresses the system resolver (hosts file, then DNS) gives `name`, within `timeout_s`."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[list[str]] = loop.create_future()

    def settle(result: list[str] | BaseException) -> None:
        if future.done():
            return
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)

    def work() -> None:
        try:
            infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
            result: list[str] | BaseException = [str(info[4][0]) for info in infos]
        except OSError as exc:
            result = exc
        try:
            loop.call_soon_threadsafe(settle, result)
        except RuntimeError:
            pass  # the loop closed after the timeout: nobody waits for this answer

    threading.Thread(target=work, name=f"resolve {name}", daemon=True).start()
    try:
        found = await asyncio.wait_for(future, timeout_s)
    except TimeoutError:
        return Lookup(name, (), "timeout")
    except OSError as exc:
        return Lookup(name, (), exc.strerror or type(exc).__name__)
    return Lookup(name, tuple(sorted(set(found))))


async def lookup_all(names: Iterable[str], timeout_s: float) -> dict[str, Lookup]:
    """Each name looked up at once; the whole takes at most about `timeout_s`."""
    unique = sorted(set(names))
    results = await asyncio.gather(*(lookup(name, timeout_s) for name in unique))
    return {r.name: r for r in results}


def resolve_names(names: Iterable[str], timeout_s: float) -> Mapping[str, tuple[str, ...]]:
    """Name -> addresses for the names that resolved (patterns and literals are not looked up)."""
    wanted = [n for n in names if not n.startswith("*.") and not _is_literal(n)]
    found = asyncio.run(lookup_all(wanted, timeout_s))
    return {name: result.addresses for name, result in found.items() if result.addresses}


def _is_literal(name: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in name else socket.AF_INET, name)
    except OSError:
        return False
    return True

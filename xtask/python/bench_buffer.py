"""The Python reference side of `cargo xtask bench buffer` (seamless_remote.buffer_remote 0.4.0,
used as a Python user would: extern client, activate, asyncio.gather). One JSON line on stdout.

    bench_buffer.py small URL N SIZE SEED
    bench_buffer.py has URL N
    bench_buffer.py big-up URL FILE
    bench_buffer.py big-down URL CS OUT
"""

import asyncio
import hashlib
import json
import sys
import time

from seamless import Buffer, Checksum
from seamless_remote import buffer_remote


def buffer(size: int, seed: int) -> bytes:
    # Same generator as the Rust side (xorshift64), different per seed.
    mask = (1 << 64) - 1
    x = ((seed * 0x9E3779B97F4A7C15) & mask) | 1
    out = bytearray()
    while len(out) < size:
        x ^= (x << 13) & mask
        x ^= x >> 7
        x ^= (x << 17) & mask
        out += x.to_bytes(8, "little")
    return bytes(out[:size])


def activate(url: str) -> None:
    buffer_remote.define_extern_client("bench", "hashserver", url=url, readonly=False)
    buffer_remote.activate(no_main=True, extern_clients=["bench"])


async def small(url: str, n: int, size: int, seed: int) -> dict:
    activate(url)
    bufs = [Buffer(buffer(size, seed * 1_000_000 + i)) for i in range(n)]
    css = [b.get_checksum() for b in bufs]
    t = time.perf_counter()
    await asyncio.gather(*[buffer_remote.write_buffer(cs, b) for cs, b in zip(css, bufs)])
    write = time.perf_counter() - t
    t2 = time.perf_counter()
    got = await asyncio.gather(*[buffer_remote.get_buffer(cs) for cs in css])
    read = time.perf_counter() - t2
    for g, b in zip(got, bufs):
        assert g is not None and g.content == b.content
    return {"wall_s": time.perf_counter() - t, "write_s": write, "read_s": read}


async def has(url: str, n: int) -> dict:
    activate(url)
    css = [Checksum(hashlib.sha256(f"bench has {i}".encode()).digest()) for i in range(n)]
    t = time.perf_counter()
    lengths = await buffer_remote.get_buffer_lengths(css)
    assert len(lengths) == n
    return {"wall_s": time.perf_counter() - t}


async def big_up(url: str, path: str) -> dict:
    activate(url)
    t = time.perf_counter()
    with open(path, "rb") as f:
        buf = Buffer(f.read())
    cs = buf.get_checksum()
    await buffer_remote.write_buffer(cs, buf)
    return {"wall_s": time.perf_counter() - t, "checksum": cs.hex()}


async def big_down(url: str, cs: str, out: str) -> dict:
    activate(url)
    t = time.perf_counter()
    buf = await buffer_remote.get_buffer(Checksum(cs))
    assert buf is not None
    with open(out, "wb") as f:
        f.write(buf.content)
    return {"wall_s": time.perf_counter() - t, "bytes": len(buf.content)}


async def main() -> None:
    cmd = sys.argv[1]
    a = sys.argv[2:]
    if cmd == "small":
        r = await small(a[0], int(a[1]), int(a[2]), int(a[3]))
    elif cmd == "has":
        r = await has(a[0], int(a[1]))
    elif cmd == "big-up":
        r = await big_up(a[0], a[1])
    elif cmd == "big-down":
        r = await big_down(a[0], a[1], a[2])
    else:
        raise SystemExit(f"unknown command {cmd}")
    print(json.dumps(r))


if __name__ == "__main__":
    asyncio.run(main())

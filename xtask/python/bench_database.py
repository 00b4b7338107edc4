"""The Python reference side of `cargo xtask bench database` (seamless_remote.database_remote
0.4.0, used as a Python user would: extern client, activate, asyncio.gather; the client's own
in-flight limit, 30). One JSON line on stdout.

    bench_database.py URL SEED
"""

import asyncio
import hashlib
import json
import sys
import time

from seamless import Checksum
from seamless_remote import database_remote


def key(kind: str, seed: int, i: int) -> Checksum:
    return Checksum(hashlib.sha256(f"{kind} {seed} {i}".encode()).digest())


async def main() -> None:
    url, seed = sys.argv[1], int(sys.argv[2])
    database_remote.define_extern_client("bench", "database", url=url, readonly=False)
    database_remote.activate(no_main=True, extern_clients=["bench"])
    # Untimed: the 5000 keys the lookups will hit.
    await asyncio.gather(*[
        database_remote.set_transformation_result(key("hit", seed, i), key("res", seed, i))
        for i in range(5000)
    ])
    t = time.perf_counter()
    results = await asyncio.gather(*[
        database_remote.get_transformation_result(
            key("hit", seed, i // 2) if i % 2 == 0 else key("miss", seed, i)
        )
        for i in range(10_000)
    ])
    get_s = time.perf_counter() - t
    assert sum(r is not None for r in results) == 5000
    t2 = time.perf_counter()
    await asyncio.gather(*[
        database_remote.set_transformation_result(key("new", seed, i), key("res", seed, i))
        for i in range(2000)
    ])
    set_s = time.perf_counter() - t2
    print(json.dumps({"wall_s": time.perf_counter() - t, "get_s": get_s, "set_s": set_s}))


if __name__ == "__main__":
    asyncio.run(main())

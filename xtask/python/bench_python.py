"""`cargo xtask bench python`: one Seamless workload on whatever seamless_remote is installed
(our wheel or the Python reference), against extern services. Prints one JSON line with the
workload's own wall time (`wall_s`); the caller measures CPU and peak RSS of the process.

    bench_python.py buffers URLS_JSON READ_SET_JSON  # 2000 small buffers written, 2000 read
    bench_python.py transformations URLS_JSON SEED   # 200 small transformations at level 3
    bench_python.py big URLS_JSON SIZE               # one SIZE-byte buffer written and read
"""

import asyncio
import json
import os
import sys
import time
import warnings

warnings.simplefilter("ignore")


def configure(urls, jobserver=False):
    import seamless_config
    from seamless_config.select import select_execution

    seamless_config.set_remote_clients(
        {
            "buffer": [{"url": urls["hashserver"], "readonly": False}],
            "database": [{"url": urls["database"], "readonly": False}],
        }
    )
    if jobserver:
        from seamless_remote import jobserver_remote

        jobserver_remote.define_extern_client("js", "jobserver", url=urls["jobserver"])
        jobserver_remote.activate(no_main=True, extern_clients=["js"])
        select_execution("remote")


async def buffers(read_set):
    from seamless import Buffer, Checksum

    tag = os.urandom(8).hex()
    bufs = [Buffer(f"{tag} small buffer {i}\n".encode()) for i in range(2000)]
    start = time.perf_counter()
    for i in range(0, len(bufs), 100):
        ok = await asyncio.gather(*(b.write() for b in bufs[i : i + 100]))
        assert all(ok), ok
    got = []
    for i in range(0, len(read_set), 100):
        got += await asyncio.gather(
            *(Checksum(c).resolution() for c in read_set[i : i + 100])
        )
    wall = time.perf_counter() - start
    assert all(g is not None for g in got)
    return wall


def transformations(seed):
    from seamless_transformer import direct

    @direct
    def add(a, b):
        return a + b

    start = time.perf_counter()
    results = [add(seed * 1000 + i, 1) for i in range(200)]
    wall = time.perf_counter() - start
    assert results == [seed * 1000 + i + 1 for i in range(200)], results[:5]
    return wall


async def big(size):
    """Write a 1 GiB Buffer, let it go, read it back: at most one 1 GiB Buffer is alive at a
    time, so the peak RSS above 1 GiB is what the client itself holds."""
    import gc

    from seamless import Buffer
    from seamless.caching.buffer_cache import get_buffer_cache
    from seamless_remote import buffer_remote

    buf = Buffer(os.urandom(size))
    cs = await buf.get_checksum_async()
    start = time.perf_counter()
    ok = await buf.write()
    written = time.perf_counter()
    del buf
    get_buffer_cache().purge() if hasattr(get_buffer_cache(), "purge") else None
    gc.collect()
    back = await buffer_remote.get_buffer(cs)
    end = time.perf_counter()
    assert ok and back is not None and len(back.content) == size
    return end - start, written - start, end - written


def main():
    what, urls = sys.argv[1], json.loads(sys.argv[2])
    import seamless_remote

    extra = {}
    if what == "buffers":
        configure(urls)
        with open(sys.argv[3]) as f:
            read_set = json.load(f)
        wall = asyncio.run(buffers(read_set))
    elif what == "transformations":
        configure(urls, jobserver=True)
        wall = transformations(int(sys.argv[3]))
    elif what == "big":
        configure(urls)
        wall, write_s, read_s = asyncio.run(big(int(sys.argv[3])))
        extra = {"write_s": write_s, "read_s": read_s}
    else:
        raise SystemExit(f"unknown workload {what}")
    impl = getattr(seamless_remote, "IMPLEMENTATION", "python")
    print(json.dumps({"wall_s": wall, "implementation": impl, **extra}), flush=True)
    sys.stdout.flush()
    os._exit(0)  # no exit-time flush of other packages in the measurement


if __name__ == "__main__":
    main()

"""`cargo xtask bench python`: one Seamless workload on whatever seamless_remote is installed
(our wheel or the Python reference), against extern services. Prints one JSON line with the
workload's own wall time (`wall_s`) and CPU time (`cpu_s`: every thread of the process, from
the start of the workload; without the interpreter's start-up and the imports); the caller
measures the whole process too (CPU and peak RSS). The transformations workload prints such a
line after each transformation (`done`), so a run that stalls still tells how far it got.

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
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(bufs), 100):
        ok = await asyncio.gather(*(b.write() for b in bufs[i : i + 100]))
        assert all(ok), ok
    got = []
    for i in range(0, len(read_set), 100):
        got += await asyncio.gather(
            *(Checksum(c).resolution() for c in read_set[i : i + 100])
        )
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert all(g is not None for g in got)
    return {"wall_s": wall, "cpu_s": cpu}


def transformations(seed):
    from seamless_transformer import direct

    @direct
    def add(a, b):
        return a + b

    assert add(seed * 1000 + 500, 1) == seed * 1000 + 501  # warm-up: first-use imports
    start, cpu = time.perf_counter(), time.process_time()
    results = []
    for i in range(200):
        results.append(add(seed * 1000 + i, 1))
        progress = {
            "done": i + 1,
            "wall_s": time.perf_counter() - start,
            "cpu_s": time.process_time() - cpu,
        }
        print(json.dumps(progress), flush=True)
    assert results == [seed * 1000 + i + 1 for i in range(200)], results[:5]
    return progress


async def big(size):
    """Write a 1 GiB Buffer, let it go, read it back: at most one 1 GiB buffer is alive at a
    time, so the peak RSS above 1 GiB is what the client itself holds.

    seamless-core keeps the bytes of the last checksums it computed (small LRU caches in
    `seamless.checksum`), which would keep the written 1 GiB alive during the read on either
    implementation; they are cleared after the write, as a program that moves on would see."""
    import gc

    from seamless import Buffer
    from seamless.checksum import cached_calculate_checksum, parse_buffer, serialize
    from seamless_remote import buffer_remote

    buf = Buffer(os.urandom(size))
    cs = await buf.get_checksum_async()
    start, cpu = time.perf_counter(), time.process_time()
    ok = await buf.write()
    written = time.perf_counter()
    del buf
    for cache in (
        cached_calculate_checksum.calculate_checksum_cache,
        cached_calculate_checksum.checksum_cache,
        serialize.serialize_cache,
        parse_buffer.parse_buffer_cache,
    ):
        cache.clear()
    gc.collect()
    back = await buffer_remote.get_buffer(cs)
    end = time.perf_counter()
    assert ok and back is not None and len(back.content) == size
    return {
        "wall_s": end - start,
        "cpu_s": time.process_time() - cpu,
        "write_s": written - start,
        "read_s": end - written,
    }


def transport_threads_cpu():
    """CPU seconds of the wheel's transport threads (named ``seamless-remote``; the Python
    package has none: its transport runs in the same threads as seamless-core)."""
    import glob

    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for task in glob.glob("/proc/self/task/*"):
        try:
            with open(task + "/comm") as f:
                if f.read().strip() != "seamless-remote":
                    continue
            with open(task + "/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def main():
    what, urls = sys.argv[1], json.loads(sys.argv[2])
    import seamless_remote

    if what == "buffers":
        configure(urls)
        with open(sys.argv[3]) as f:
            read_set = json.load(f)
        result = asyncio.run(buffers(read_set))
    elif what == "transformations":
        configure(urls, jobserver=True)
        result = transformations(int(sys.argv[3]))
    elif what == "big":
        configure(urls)
        result = asyncio.run(big(int(sys.argv[3])))
    else:
        raise SystemExit(f"unknown workload {what}")
    impl = getattr(seamless_remote, "IMPLEMENTATION", "python")
    result["transport_threads_cpu_s"] = transport_threads_cpu()
    print(json.dumps({**result, "implementation": impl}), flush=True)
    sys.stdout.flush()
    os._exit(0)  # no exit-time flush of other packages in the measurement


if __name__ == "__main__":
    main()

"""Checks of the seamless_remote wheel that need a Python process (run by tests/tests/wheel.rs
in the wheel's virtualenv). Each prints one JSON line.

    wheel_checks.py upload HASHSERVER_URL   # close_all_clients during an upload; null buffer
    wheel_checks.py fork HASHSERVER_URL     # forked and spawned children use the wheel
    wheel_checks.py guard HASHSERVER_URL    # the worker guard (SEAMLESS_ALLOW_REMOTE_CLIENTS_IN_WORKER)
    wheel_checks.py cancel JOBSERVER_URL HASHSERVER_URL DATABASE_URL  # cancel on cancellation
"""

import asyncio
import json
import multiprocessing
import os
import sys


def extern_buffers(url):
    from seamless_remote import buffer_remote

    buffer_remote.define_extern_client("hs", "hashserver", url=url, readonly=False)
    buffer_remote.activate(no_main=True, extern_clients=["hs"])
    return buffer_remote


async def upload(url):
    from seamless import Buffer, Checksum
    from seamless_remote import client

    br = extern_buffers(url)
    data = os.urandom(64 << 20)
    buf = Buffer(data)
    cs = buf.get_checksum()
    await br.promise(cs)
    task = asyncio.ensure_future(br.write_buffer(cs, buf))
    await asyncio.sleep(0.02)
    client.close_all_clients()  # as seamless-core's buffer writer does before a dispatch
    written = await task
    back = await br.get_buffer(cs)
    # The null buffer (the empty bytes) round trip.
    null = Buffer(b"")
    null_cs = null.get_checksum()
    null_written = await br.write_buffer(null_cs, null)
    null_back = await br.get_buffer(null_cs)
    missing = await br.get_buffer(Checksum("00" * 32))
    lengths = await br.get_buffer_lengths([cs, Checksum("00" * 32)])
    return {
        "written": written,
        "equal": back is not None and back.content == data,
        "null_written": null_written,
        "null_equal": null_back is not None and null_back.content == b"",
        "missing": missing is None,
        "lengths": lengths,
        "write_urls": [c.url for c in br._write_server_clients],
    }


def child_work(args):
    url, i = args
    from seamless import Buffer

    br = extern_buffers(url)

    async def go():
        buf = Buffer(f"child {i} of {os.getppid()}".encode())
        cs = buf.get_checksum()
        ok = await br.write_buffer(cs, buf)
        back = await br.get_buffer(cs)
        return ok and back.content == buf.content

    return asyncio.run(go())


async def parent_first(url):
    from seamless import Buffer

    br = extern_buffers(url)
    buf = Buffer(b"written by the parent before forking")
    return await br.write_buffer(buf.get_checksum(), buf)


def fork(url):
    parent = asyncio.run(parent_first(url))
    out = {"parent": parent}
    for method in ("fork", "spawn"):
        ctx = multiprocessing.get_context(method)
        with ctx.Pool(2) as pool:
            out[method] = pool.map(child_work, [(url, i) for i in range(4)])
    # The parent still works after its children.
    out["parent_after"] = asyncio.run(parent_first(url))
    return out


def guard(url):
    from seamless_remote import client

    br = extern_buffers(url)
    client.set_is_worker(True)

    async def go():
        from seamless import Buffer

        buf = Buffer(b"from a worker")
        try:
            await br.write_buffer(buf.get_checksum(), buf)
            return "allowed"
        except Exception as e:  # the reference raises too
            return "refused: " + type(e).__name__

    return asyncio.run(go())


async def cancel(jobserver, hashserver, database):
    """A long transformation, cancelled by the caller: the jobserver is told to cancel it."""
    import seamless_config
    from seamless_config.select import select_execution
    from seamless_remote import jobserver_remote
    from seamless_transformer import delayed

    seamless_config.set_remote_clients(
        {
            "buffer": [{"url": hashserver, "readonly": False}],
            "database": [{"url": database, "readonly": False}],
        }
    )
    jobserver_remote.define_extern_client("js", "jobserver", url=jobserver)
    jobserver_remote.activate(no_main=True, extern_clients=["js"])
    select_execution("remote")

    @delayed
    def sleepy(t):
        import time

        time.sleep(t)
        return t

    tf = sleepy(120)
    task = asyncio.ensure_future(tf.computation())
    for _ in range(300):
        await asyncio.sleep(0.1)
        tf_checksum = getattr(tf, "transformation_checksum", None) or getattr(
            tf, "_transformation_checksum", None
        )
        if tf_checksum is not None:
            try:
                if jobserver_remote.transformation_status(tf_checksum) == "running":
                    break
            except RuntimeError:
                pass
    task.cancel()
    try:
        await task
    except BaseException:
        pass
    status = None
    for _ in range(100):
        await asyncio.sleep(0.1)
        status = await jobserver_remote.transformation_status_async(tf_checksum)
        if status != "running":
            break
    return {"status_after_cancel": status}


def main():
    what = sys.argv[1]
    if what == "upload":
        out = asyncio.run(upload(sys.argv[2]))
    elif what == "fork":
        out = fork(sys.argv[2])
    elif what == "guard":
        out = {"result": guard(sys.argv[2])}
    elif what == "cancel":
        out = asyncio.run(cancel(sys.argv[2], sys.argv[3], sys.argv[4]))
    else:
        raise SystemExit(f"unknown check {what}")
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()

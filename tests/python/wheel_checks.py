"""Checks of the seamless_remote wheel that need a Python process (run by tests/tests/wheel.rs
in the wheel's virtualenv). Each prints one JSON line.

    wheel_checks.py upload HASHSERVER_URL   # close_all_clients during an upload; null buffer
    wheel_checks.py fork HASHSERVER_URL     # forked and spawned children use the wheel
    wheel_checks.py guard HASHSERVER_URL    # the worker guard (SEAMLESS_ALLOW_REMOTE_CLIENTS_IN_WORKER)
    wheel_checks.py jobs JOBSERVER_URL CASES_JSON  # one retry, no retry of a refusal, cancel
    wheel_checks.py busy HASHSERVER_URL     # a write and a read while connect() says EBUSY
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
    # The null buffer round trip (upstream's test): Buffer(None, "plain") is b"null\n".
    null = Buffer(None, "plain")
    null_cs = null.get_checksum()
    null_written = await br.write_buffer(null_cs, null)
    null_back = await br.get_buffer(null_cs)
    missing = await br.get_buffer(Checksum("00" * 32))
    lengths = await br.get_buffer_lengths([cs, Checksum("00" * 32)])
    # The client views that callers read (seamless-core's buffer writer, seamless-dask's
    # promise, seamless-transformer's register): url, readonly, ensure_initialized_sync, promise.
    writer = br._write_server_clients[0]
    writer.ensure_initialized_sync(skip_healthcheck=True)
    await writer.promise(Buffer(b"promised through a view").get_checksum())
    reader = br._read_server_clients[0]
    reader.ensure_initialized_sync()
    write_urls = [c.url for c in br._write_server_clients]
    # A server that cannot be reached is a ConnectionError (as aiohttp's were for the callers).
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    br.define_extern_client("dead", "hashserver", url=dead, readonly=True)
    br.activate(no_main=True, extern_clients=["dead"])
    try:
        await br.get_buffer(Checksum("11" * 32))
        unreachable = "no error"
    except ConnectionError as e:
        unreachable = "ConnectionError: " + type(e).__name__
    except Exception as e:
        unreachable = "other: " + type(e).__name__
    return {
        "unreachable": unreachable,
        "views": [writer.url, writer.readonly, reader.url, len(br._read_folders_clients)],
        "written": written,
        "equal": back is not None and back.content == data,
        "null_written": null_written,
        "null_equal": null_back is not None and null_back.content == b"null\n",
        "missing": missing is None,
        "lengths": lengths,
        "write_urls": write_urls,
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


async def jobs(url, cases):
    """Through the jobserver at `url` (a fault proxy): a transformation whose first request is
    answered 503 (retried once), one answered 400 (a definite failure: not retried), and a long
    one whose awaiting task is cancelled (the job is cancelled on the server)."""
    from seamless_remote import jobserver_remote

    jobserver_remote.define_extern_client("js", "jobserver", url=url)
    jobserver_remote.activate(no_main=True, extern_clients=["js"])

    def run(case):
        return jobserver_remote.run_transformation(
            case["dict"], tf_checksum=case["tf"], tf_dunder={}, scratch=False
        )

    out = {}
    if "retried" in cases:
        result = await run(cases["retried"])
        out["retried"] = str(result["result_checksum"].hex())
        return out
    try:
        await run(cases["refused"])
        out["refused"] = "no error"
    except Exception as e:
        out["refused"] = type(e).__name__
    slow = cases["cancelled"]
    task = asyncio.ensure_future(run(slow))
    status = None
    for _ in range(200):
        await asyncio.sleep(0.05)
        status = await jobserver_remote.transformation_status_async(slow["tf"])
        if status == "running":
            break
    out["before_cancel"] = status
    task.cancel()
    try:
        await task
        out["task"] = "finished"
    except asyncio.CancelledError:
        out["task"] = "cancelled"
    for _ in range(200):
        await asyncio.sleep(0.05)
        status = await jobserver_remote.transformation_status_async(slow["tf"])
        if status == "canceled":
            break
    out["after_cancel"] = status
    return out


async def busy(url):
    """Run with tests/fault/ebusy_connect.c preloaded: connecting to the hashserver fails with
    EBUSY ("device or resource busy"), which upstream answers with a client restart."""
    from seamless import Buffer

    br = extern_buffers(url)
    buf = Buffer(b"written while the connection was busy\n")
    cs = buf.get_checksum()
    try:
        written = await br.write_buffer(cs, buf)
        back = await br.get_buffer(cs)
    except Exception as e:
        return {"error": type(e).__name__, "is_connection_error": isinstance(e, ConnectionError), "message": str(e)}
    return {"written": written, "back": back.content.decode() if back else None}


def main():
    what = sys.argv[1]
    if what == "upload":
        out = asyncio.run(upload(sys.argv[2]))
    elif what == "fork":
        out = fork(sys.argv[2])
    elif what == "guard":
        out = {"result": guard(sys.argv[2])}
    elif what == "jobs":
        with open(sys.argv[3]) as f:
            out = asyncio.run(jobs(sys.argv[2], json.load(f)))
    elif what == "busy":
        out = asyncio.run(busy(sys.argv[2]))
    else:
        raise SystemExit(f"unknown check {what}")
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()

"""The Seamless Dask front: the seamless-jobserver HTTP protocol in front of a Dask scheduler.

Shipped inside the Rust crate seamless-daskserver-remote and launched by its launcher, on the
daskserver's host and in its environment (seamless-dask and distributed must be importable).
It holds a ``distributed.Client`` wrapped in seamless-dask's ``SeamlessDaskClient``, exactly as
seamless-remote's ``DaskserverLaunchedHandle`` does (worker plugin registration, warm-up, the
wait for workers and the zero-worker warning), and serves:

    GET  /healthcheck
    GET  /run-transformation              {transformation_dict, tf_checksum, tf_dunder,
                                           scratch, strict_dunder, record[, require_value]}
    GET  /transformation-status/<tf>
    POST /cancel-transformation/<tf>

with the answers of seamless-jobserver: 200 {"result_checksum": ...}, 500 with the traceback of
a failed transformation, 200 "Transformation was canceled", 409 on a record-mode mismatch.

Launch conventions (as the other Seamless services): ``--status-file`` (its ``parameters`` give
the scheduler address, the worker count, the remote clients, local-cluster/interactive and
record mode; rewritten "running" with the port once serving, "failed" on a start-up error,
deleted at exit), ``--port-range``, ``--host``, ``--timeout`` (inactivity, seconds). It also
exits when its scheduler stops answering, so that the next request relaunches both.
"""

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import sys
import time
import traceback

CANCELED = "Transformation was canceled"
SCHEDULER_CHECK_INTERVAL = 2.0
SCHEDULER_DEAD_CHECKS = 3
FINISHED_KEEP = 1000


def log(*args):
    print("[seamless-dask-front]", *args, file=sys.stderr, flush=True)


class Status:
    """The launcher's status file, rewritten atomically."""

    def __init__(self, path):
        self.path = path
        self.contents = self._wait()
        self.running_written = False

    def _wait(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(self.path, encoding="utf-8") as f:
                    contents = json.load(f)
                if isinstance(contents, dict):
                    return contents
            except (FileNotFoundError, json.JSONDecodeError):
                pass
            if time.monotonic() > deadline:
                log(f"status file {self.path} did not appear within {timeout:.0f} s")
                sys.exit(1)
            time.sleep(0.1)

    def write(self, **fields):
        self.contents.update(fields)
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.contents, f)
            f.write("\n")
        os.replace(tmp, self.path)

    def remove(self):
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


def pick_port(host, start, end):
    ports = list(range(start, end + 1))
    random.shuffle(ports)
    for port in ports:
        try:
            with socket.create_server((host, port), reuse_port=False):
                return port
        except OSError:
            continue
    raise RuntimeError(f"No free port available in range {start}-{end}")


def as_tuples(transformation_dict):
    """JSON lists back into the tuples Seamless uses for pins and ``__output__``."""
    result = {}
    for key, value in transformation_dict.items():
        if isinstance(value, list) and (not key.startswith("__") or key == "__output__"):
            value = tuple(value)
        result[key] = value
    return result


class Front:
    def __init__(self, client, sdc, record, timeout):
        self.client = client
        self.sdc = sdc
        self.stop = asyncio.Event()
        self.record = record
        self.timeout = timeout
        self.last_activity = time.monotonic()
        self.running = {}  # tf -> number of requests waiting for it
        self.canceled = set()
        self.finished = {}  # tf -> "done" | "failed" | "canceled"

    def touch(self):
        self.last_activity = time.monotonic()

    def scheduler_lost(self):
        return self.client.status != "running"

    def drop(self, request):
        """The scheduler is gone: cut the connection without an answer (a transient failure
        for the caller, who then relaunches the daskserver and this front) and exit."""
        log("the scheduler is gone: dropping a request and exiting")
        self.stop.set()
        if request.transport is not None:
            request.transport.abort()
        from aiohttp import web

        return web.Response(status=503, text="the Dask scheduler is gone")

    def idle(self):
        return not self.running and time.monotonic() - self.last_activity > self.timeout

    def _finish(self, tf, state):
        self.finished.pop(tf, None)
        self.finished[tf] = state
        while len(self.finished) > FINISHED_KEEP:
            self.finished.pop(next(iter(self.finished)))

    async def healthcheck(self, request):
        from aiohttp import web

        if self.scheduler_lost():
            return web.Response(status=503, text="the Dask scheduler is gone")
        return web.Response(text="OK")

    def _submit(self, body):
        from seamless_dask.types import TransformationInputSpec, TransformationSubmission

        tf_dict = as_tuples(body["transformation_dict"])
        meta = tf_dict.get("__meta__") or {}
        if not isinstance(meta, dict):
            meta = {}
        fingertip = bool(meta.get("allow_input_fingertip", False))
        inputs, futures = {}, {}
        for pin, value in tf_dict.items():
            if pin.startswith("__") or not isinstance(value, tuple) or len(value) < 3:
                continue
            celltype, subcelltype, checksum = value[:3]
            if checksum is None:
                raise ValueError(f"Input '{pin}' has no checksum")
            inputs[pin] = TransformationInputSpec(
                name=pin,
                celltype=celltype,
                subcelltype=subcelltype,
                checksum=checksum,
                kind="checksum",
            )
            if fingertip:
                futures[pin] = self.sdc.get_fat_finger_checksum_future(checksum)
            else:
                futures[pin] = self.sdc.get_fat_checksum_future(checksum)
        tf = str(body["tf_checksum"])
        require_value = bool(body.get("require_value", False))
        if require_value:
            # A finished submission held here may name a result whose buffer is gone.
            cached = self.sdc.get_transformation_futures(tf)
            if cached is not None and cached.thin.done():
                self.sdc.release_transformation_futures(cached, cancel=False)
        submission = TransformationSubmission(
            transformation_dict=tf_dict,
            inputs=inputs,
            input_futures=futures,
            tf_checksum=tf,
            tf_dunder=body.get("tf_dunder") or {},
            scratch=bool(body.get("scratch", False)),
            meta=meta,
            require_value=require_value,
            allow_input_fingertip=fingertip,
            strict_dunder=bool(body.get("strict_dunder", False)),
        )
        return self.sdc.submit_transformation(submission)

    async def run_transformation(self, request):
        from aiohttp import web

        self.touch()
        try:
            body = await request.json()
            tf = str(body["tf_checksum"])
            if len(tf) != 64 or any(c not in "0123456789abcdef" for c in tf):
                raise ValueError(f"invalid tf_checksum {tf!r}")
            if not isinstance(body["transformation_dict"], dict):
                raise ValueError("transformation_dict must be an object")
            record = bool(body.get("record", False))
        except Exception as exc:
            return web.Response(status=400, text=f"Invalid payload: {exc}")
        if record != self.record:
            return web.Response(
                status=409,
                text=(
                    "Dask front record mode mismatch: "
                    f"client requested record={record}, "
                    f"but the daskserver runs with record={self.record}."
                ),
            )
        if self.scheduler_lost():
            return self.drop(request)
        loop = asyncio.get_running_loop()
        self.running[tf] = self.running.get(tf, 0) + 1
        self.canceled.discard(tf)
        self.finished.pop(tf, None)
        try:
            futures = await loop.run_in_executor(None, self._submit, body)
            done = loop.create_future()

            def deliver(outcome):
                if not done.done():
                    done.set_result(outcome)


            def on_done(fut):
                # Runs in the Dask client's callback thread, after SeamlessDaskClient's own
                # callback, which has already fetched a successful result into `futures`.
                if fut.status == "finished" and futures.result_checksum:
                    value = (futures.tf_checksum or tf, futures.result_checksum, None)
                    loop.call_soon_threadsafe(deliver, (value, None))
                else:
                    loop.call_soon_threadsafe(deliver, None)

            futures.thin.add_done_callback(on_done)
            outcome = await done
            if outcome is None:
                # A failure, a cancellation or a result not fetched yet: one round trip.
                try:
                    outcome = (await loop.run_in_executor(None, futures.thin.result), None)
                except Exception:
                    if tf in self.canceled:
                        raise asyncio.CancelledError from None
                    raise
            tf_hex, result_hex, exc = outcome[0]
            if exc:
                if tf in self.canceled or exc.strip() == CANCELED:
                    self._finish(tf, "canceled")
                    return web.Response(text=CANCELED)
                self._finish(tf, "failed")
                return web.Response(status=500, text=exc)
            if not result_hex:
                self._finish(tf, "failed")
                return web.Response(status=500, text="Dask returned no result checksum")
            self._finish(tf, "done")
            return web.Response(
                text=json.dumps({"result_checksum": result_hex}),
                content_type="application/json",
            )
        except asyncio.CancelledError:
            if tf in self.canceled:
                self._finish(tf, "canceled")
                return web.Response(text=CANCELED)
            raise
        except Exception:
            if tf in self.canceled:
                self._finish(tf, "canceled")
                return web.Response(text=CANCELED)
            if self.scheduler_lost():
                return self.drop(request)
            self._finish(tf, "failed")
            return web.Response(status=500, text=traceback.format_exc())
        finally:
            self.touch()
            n = self.running.get(tf, 1) - 1
            if n <= 0:
                self.running.pop(tf, None)
            else:
                self.running[tf] = n

    async def transformation_status(self, request):
        from aiohttp import web

        self.touch()
        tf = request.match_info["tf"]
        if tf in self.running:
            status = "canceled" if tf in self.canceled else "running"
        else:
            status = self.finished.get(tf, "not-running")
        return web.json_response({"status": status})

    async def cancel_transformation(self, request):
        from aiohttp import web

        self.touch()
        tf = request.match_info["tf"]
        loop = asyncio.get_running_loop()
        try:
            canceled = bool(await loop.run_in_executor(None, self.sdc.cancel_by_checksum, tf))
        except Exception:
            log("cancel failed:", traceback.format_exc())
            canceled = False
        if tf in self.running:
            self.canceled.add(tf)
            canceled = True
        status = "canceled" if canceled else self.finished.get(tf, "not-running")
        return web.json_response({"canceled": canceled, "status": status})


def connect(params):
    import distributed
    from seamless_dask.client import SeamlessDaskClient

    address = params["scheduler_address"]
    client = distributed.Client(address, timeout="10s", set_as_default=False)
    sdc = SeamlessDaskClient(
        client,
        worker_plugin_workers=int(params.get("workers") or 1),
        remote_clients=params.get("remote_clients"),
        is_local_cluster=bool(params.get("is_local_cluster")),
        interactive=bool(params.get("interactive")),
    )
    return client, sdc


async def serve(args, status, params, client, sdc):
    from aiohttp import web

    front = Front(client, sdc, bool(params.get("record")), args.timeout)
    app = web.Application(client_max_size=1024**3)
    app.add_routes(
        [
            web.get("/healthcheck", front.healthcheck),
            web.get("/run-transformation", front.run_transformation),
            web.get("/transformation-status/{tf}", front.transformation_status),
            web.post("/cancel-transformation/{tf}", front.cancel_transformation),
        ]
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    status.write(status="running", port=args.port)
    status.running_written = True
    log(f"serving on {args.host}:{args.port} for {params['scheduler_address']}")
    stop = front.stop
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    dead = 0
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), SCHEDULER_CHECK_INTERVAL)
            except asyncio.TimeoutError:
                pass
            if front.idle():
                log(f"no request for {args.timeout} s: exiting")
                break
            dead = 0 if client.status == "running" else dead + 1
            if dead >= SCHEDULER_DEAD_CHECKS:
                log("the scheduler does not answer: exiting")
                break
    finally:
        status.remove()
        await runner.cleanup()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--status-file", required=True)
    p.add_argument("--port-range", type=int, nargs=2, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--timeout", type=float, default=600.0)
    args = p.parse_args()

    status = Status(args.status_file)
    client = None
    try:
        params = status.contents.get("parameters") or {}
        if "scheduler_address" not in params:
            raise RuntimeError("the status file has no parameters.scheduler_address")
        if params.get("record"):
            from seamless_config.select import select_record

            select_record(True)
        args.port = pick_port(args.host, *args.port_range)
        client, sdc = connect(params)
    except BaseException:
        log("start-up failed:\n" + traceback.format_exc())
        status.write(status="failed")
        sys.exit(1)
    try:
        asyncio.run(serve(args, status, params, client, sdc))
    finally:
        status.remove()
        try:
            client.close(timeout="2s")
        except Exception:
            pass


if __name__ == "__main__":
    main()

"""The Python reference on Dask, for the interop test and `cargo xtask bench dask`: builds
seamless-remote's DaskserverLaunchedHandle for a project stage (launching or reusing the
daskserver through remote-http-launcher), then submits rounds of transformations through its
SeamlessDaskClient, all of a round at once, and waits for them. HOME and PATH come from the
caller.

    dask_interop.py PROJECT_DIR STAGE JOBS_JSON

JOBS_JSON: {"rounds": [[{"dict": <transformation dict>, "tf": <checksum>}, ...], ...]}
Prints {"port", "dashboard_url", "rounds": [{"wall": seconds, "results": [checksum|error]}]}.
"""

import json
import sys
import time
import warnings

warnings.simplefilter("ignore")


def submission(sdc, job):
    from seamless_dask.types import TransformationInputSpec, TransformationSubmission

    tf_dict = {}
    for key, value in job["dict"].items():
        if isinstance(value, list) and (not key.startswith("__") or key == "__output__"):
            value = tuple(value)
        tf_dict[key] = value
    inputs, futures = {}, {}
    for pin, value in tf_dict.items():
        if pin.startswith("__"):
            continue
        celltype, subcelltype, checksum = value
        inputs[pin] = TransformationInputSpec(
            name=pin, celltype=celltype, subcelltype=subcelltype, checksum=checksum
        )
        futures[pin] = sdc.get_fat_checksum_future(checksum)
    return TransformationSubmission(
        transformation_dict=tf_dict,
        inputs=inputs,
        input_futures=futures,
        tf_checksum=job["tf"],
        tf_dunder={},
        scratch=False,
    )


def main() -> None:
    project, stage, jobs_file = sys.argv[1], sys.argv[2], sys.argv[3]
    import seamless_config
    from seamless_remote import daskserver_remote

    # The reference's own flow: the stage activates the hashserver, the database and then
    # the daskserver (whose worker plugin learns the stores from them).
    seamless_config.set_workdir(project)
    seamless_config.set_stage(stage)
    handle = daskserver_remote._launched_handle
    if handle is None:
        raise RuntimeError(f"stage {stage!r} activated no daskserver")
    with open(jobs_file) as f:
        rounds = json.load(f)["rounds"]
    sdc = handle.client
    out = []
    for jobs in rounds:
        start = time.perf_counter()
        futures = [sdc.submit_transformation(submission(sdc, job)) for job in jobs]
        results = []
        for fut in futures:
            _tf, result, exc = fut.thin.result()
            results.append(result if not exc else "error: " + exc)
        out.append({"wall": time.perf_counter() - start, "results": results})
    print(
        json.dumps(
            {
                "port": handle.launch_payload["port"],
                "dashboard_url": handle.dashboard_url,
                "rounds": out,
            }
        )
    )
    sys.stdout.flush()
    sdc.client.close(timeout="2s")


if __name__ == "__main__":
    main()

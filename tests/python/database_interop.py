"""Drives the Python reference DatabaseClient (seamless-remote 0.4.0) for interop tests.

    database_interop.py set URL TF RESULT          -> set_transformation_result
    database_interop.py get URL TF                 -> the result hex, or "None"
    database_interop.py set-record URL TF RESULT RECORD_JSON
    database_interop.py get-record URL TF          -> the record as JSON, or "None"
    database_interop.py rev URL RESULT             -> JSON list of tf hex, or "None"
"""

import asyncio
import json
import sys

from seamless import Checksum
from seamless_remote.database_client import DatabaseClient


async def main() -> int:
    cmd, url = sys.argv[1], sys.argv[2]
    client = DatabaseClient(readonly=False)
    client.url = url
    a = sys.argv[3:]
    if cmd == "set":
        await client.set_transformation_result(Checksum(a[0]), Checksum(a[1]))
    elif cmd == "get":
        r = await client.get_transformation_result(Checksum(a[0]))
        print("None" if r is None else r.hex())
    elif cmd == "set-record":
        await client.set_execution_record(Checksum(a[0]), Checksum(a[1]), json.loads(a[2]))
    elif cmd == "get-record":
        r = await client.get_execution_record(Checksum(a[0]))
        print("None" if r is None else json.dumps(r, sort_keys=True))
    elif cmd == "rev":
        r = await client.get_rev_transformations(Checksum(a[0]))
        print("None" if r is None else json.dumps([c.hex() for c in r]))
    else:
        print(f"unknown command {cmd}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

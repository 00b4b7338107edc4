"""Drives the Python reference BufferClient (seamless-remote 0.4.0) for interop tests.

    buffer_interop.py read URL CHECKSUM      -> the buffer's bytes on stdout (exit 3 if absent)
    buffer_interop.py write URL FILE          -> uploads FILE, prints its checksum
"""

import asyncio
import sys

from seamless import Buffer, Checksum
from seamless_remote.buffer_client import BufferClient


async def main() -> int:
    cmd, url = sys.argv[1], sys.argv[2]
    client = BufferClient(readonly=False)
    client.url = url
    if cmd == "read":
        buf = await client.get(Checksum(sys.argv[3]))
        if buf is None:
            return 3
        sys.stdout.buffer.write(buf.content)
        return 0
    if cmd == "write":
        with open(sys.argv[3], "rb") as f:
            data = f.read()
        buf = Buffer(data)
        checksum = buf.get_checksum()
        await client.write(checksum, buf)
        print(checksum.hex())
        return 0
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

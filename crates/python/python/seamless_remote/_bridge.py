"""The asyncio side of the bridge from the Rust runtime: one mailbox per event loop.

The Rust side queues a completion and, if the mailbox was empty, signals the loop's wake-up
descriptor (an eventfd, or a pipe where there is none); the loop reads it (``add_reader``) and
runs the completions on its own thread. No Python code ever runs on the Rust runtime's threads.
"""

import os
import weakref

from . import _native

_mailboxes = weakref.WeakKeyDictionary()


def _close(key, fds):
    _native.bridge_unregister(key)
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _wake_fds():
    """(read end, write end, bytes per wake-up): one eventfd (one descriptor per loop), else a
    pipe."""
    if hasattr(os, "eventfd"):
        fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        return fd, fd, 8
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    return r, w, 1


def mailbox(loop) -> int:
    """The mailbox key of `loop` (made on first use, in the loop's thread)."""
    entry = _mailboxes.get(loop)
    if entry is not None and entry[1] == os.getpid():
        return entry[0]
    r, w, width = _wake_fds()
    key = _native.bridge_register(w, width)

    def drain():
        # Read the wake-ups before taking the queue: a completion queued meanwhile either is
        # taken now or signals again.
        try:
            while os.read(r, 4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        _native.bridge_drain(key)

    loop.add_reader(r, drain)
    _mailboxes[loop] = (key, os.getpid())
    # Not at exit: other exit handlers (seamless's buffer-writer flush) still await through it.
    weakref.finalize(loop, _close, key, sorted({r, w})).atexit = False
    return key

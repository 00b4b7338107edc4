"""Client-wide functions (the reference's ``seamless_remote.client``)."""

from . import _native

RemoteError = _native.RemoteError  # a RuntimeError: what failed, where, after how many attempts
RemoteConnectionError = _native.RemoteConnectionError  # a ConnectionError: a service unreachable


def close_all_clients():
    """Stop the keepalive and drop every client's idle connections.

    Unlike the reference, a request in flight is never cut: an upload (seamless-core's buffer
    writer calls this before every remote dispatch) finishes on the connection it holds, so a
    promised buffer always arrives. The next request reconnects.
    """
    _native.close_all_clients()


def set_is_worker(is_worker: bool = True):
    """Mark this process as a Seamless worker (remote clients are then refused unless
    SEAMLESS_ALLOW_REMOTE_CLIENTS_IN_WORKER is set)."""
    _native.set_is_worker(bool(is_worker))


__all__ = ["close_all_clients", "RemoteError", "RemoteConnectionError", "set_is_worker"]

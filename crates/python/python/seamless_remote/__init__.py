"""seamless_remote, implemented in Rust (a drop-in for the Python seamless-remote 0.4.0).

The modules keep the reference's names and signatures: ``buffer_remote``, ``database_remote``,
``jobserver_remote``, ``daskserver_remote`` and ``client``. Transport, verification, failover and
the launcher are the Rust crates of seamless-remote-rs (``seamless_remote._native``).
"""

from . import _native

IMPLEMENTATION = "rust"
__version__ = "0.4.0+rust"

# Every SEAMLESS_* environment variable is read once, here (as the Rust programs do at start).
_native.install_settings()

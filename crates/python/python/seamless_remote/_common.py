"""What the four service modules share: the selection and workdir from seamless_config, and
checksums as hex strings."""

import os

from seamless import Checksum


def workdir() -> str:
    """The directory whose seamless.yaml / seamless.profile.yaml the Rust side reads."""
    try:
        import seamless_config

        wd = getattr(seamless_config, "_workdir", None)
        if wd:
            return str(wd)
    except ImportError:
        pass
    return os.getcwd()


def current():
    """(cluster, project, subproject, stage, substage) as seamless_config selects them."""
    from seamless_config.select import get_current

    return tuple(get_current())


def hex_of(checksum) -> str:
    return Checksum(checksum).hex()


def extras(extra_launched_clients):
    return [dict(p) for p in (extra_launched_clients or [])]

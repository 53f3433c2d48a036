"""ltxserve: a self-hosted, hosted-API-compatible LTX-2 fast video service."""

from importlib.metadata import PackageNotFoundError, version


def _version() -> str:
    # The server distribution, or the client-only one (clients/python), which ships this file too.
    for distribution in ("ltxserve", "ltxserve-client"):
        try:
            return version(distribution)
        except PackageNotFoundError:
            pass
    return "0.0.0"  # a source tree that was never installed


__version__ = _version()

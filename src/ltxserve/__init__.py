"""ltxserve: a self-hosted, hosted-API-compatible LTX-2 fast video service."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ltxserve")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

"""The package version, read by the build (hatch) and shown by ``lume --version``."""

__version__ = "0.1.0"
"""The version of lume-sdk that is installed."""

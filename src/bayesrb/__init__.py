"""bayesrb: real-bogus classification of difference-imaging candidates with a Bayesian CNN."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bayesrb")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without installation
    __version__ = "0.0.0+unknown"

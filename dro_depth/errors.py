"""The package's one base class for errors a user can cause (bad input, settings, files).

Every input, configuration and checkpoint error of dro_depth derives from :class:`DroDepthError` (itself a
``ValueError``, so existing ``except ValueError`` callers keep working). Nodes and CLIs catch exactly this
base: anything else reaching them is a bug, logged with its traceback and counted as an internal error.
"""

__all__ = ['ConfigError', 'DroDepthError']


class DroDepthError(ValueError):
    """A user-facing error: the message names the value, the rule it broke and the likely cause."""


class ConfigError(DroDepthError):
    """A setting (estimator, node or CLI configuration) is outside its documented range."""

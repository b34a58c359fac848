"""User-facing errors. The CLI prints their message (no traceback) and exits non-zero."""


class ContrafitError(Exception):
    """A problem the user can fix: the message says what was expected, what was found, and how."""


class DataError(ContrafitError):
    """Bad input data (file, line, field)."""


class ConfigError(ContrafitError):
    """Bad recipe, config key or value."""


class ModelLoadError(ContrafitError):
    """A model name or folder that cannot be loaded."""

"""Exception classes of the science layer. Callers catch these, never bare Exception."""


class CmkdError(Exception):
    """Base class for every error the core raises on purpose."""


class ConfigError(CmkdError):
    """A config file or dataclass got an unknown key or an invalid value."""


class InputError(CmkdError):
    """User-supplied input (file, text, manifest) is invalid.

    The message names the source (file and line or row) and the reason, so it can be shown
    to a user as is.
    """


class ManifestError(InputError):
    """A manifest CSV for `cmkd cohort import` has a bad row."""


class CohortError(CmkdError):
    """A cohort folder is missing, incomplete or inconsistent."""

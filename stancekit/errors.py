"""The one error hierarchy of stancekit; raised where input enters, naming place, rule and value."""

from __future__ import annotations


class StancekitError(Exception):
    """Base class: a problem with user input that the user can fix."""


class ConfigError(StancekitError):
    """A config file or override is invalid."""


class DataError(StancekitError):
    """A data file or record is invalid."""


class ArtifactError(StancekitError):
    """A model artifact is missing, corrupted or inconsistent."""


class RequestError(StancekitError):
    """A serving request is invalid (bad field, too large)."""


class OverloadedError(StancekitError):
    """The service is at capacity; retry later."""

"""Errors the core raises: each carries a message fit to show a user as one line."""

from __future__ import annotations


class BotError(Exception):
    """Base of every error the core raises on purpose."""


class RegistryError(BotError):
    """models.yaml is unreadable or invalid; the message names the file, the model and the field."""

    def __init__(self, message: str, *, file: str = "", model: str | None = None, field: str | None = None) -> None:
        parts = [file or "models.yaml"]
        if model:
            parts.append(f"model '{model}'")
        if field:
            parts.append(f"field '{field}'")
        super().__init__(f"{': '.join(parts)}: {message}")
        self.file = file
        self.model = model
        self.field = field


class UnknownModelError(BotError, KeyError):
    """A model name that models.yaml does not list."""

    def __init__(self, name: str, known: tuple[str, ...] = ()) -> None:
        hint = f" (known: {', '.join(known)})" if known else ""
        super().__init__(f"unknown model '{name}'{hint}")
        self.name = name
        self.known = known

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ModelLoadError(BotError):
    """A listed model could not be loaded (files missing, not cached while offline, corrupt files ...)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"model '{name}' is unavailable: {reason}")
        self.name = name
        self.reason = reason


class InvalidInputError(BotError, TypeError):
    """Input the classifier cannot take, such as a non-string."""


class PermissionDenied(BotError):
    """The actor may not do this (for example a non-admin changing chat settings)."""


class InvalidSettingError(BotError, ValueError):
    """A chat setting value that is out of range or unknown."""


class InferenceError(BotError):
    """A loaded model failed on a batch; the callers of that batch get this, other batches go on."""


class StorageError(BotError):
    """The database cannot be opened, is of an unknown schema, or refused a write."""


class StorageBusyError(StorageError):
    """Another process held the database locked for longer than this bot waits; the write was not stored."""


class UnknownEventError(StorageError, LookupError):
    """No moderation event has this id."""

    def __init__(self, event_id: int) -> None:
        super().__init__(f"no moderation event #{event_id}")
        self.event_id = event_id


class DashboardError(BotError):
    """The web dashboard cannot start (its address is taken, a bad key ...): one line for the operator."""

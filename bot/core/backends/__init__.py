"""Model runtimes behind one interface (``Backend``); see ``base``."""

from bot.core.backends.base import Backend, Prediction, load_backend

__all__ = ["Backend", "Prediction", "load_backend"]

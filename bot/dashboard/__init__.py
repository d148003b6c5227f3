"""The moderators' web dashboard: review queue, member history, charts, settings and export, per chat.

Off unless ``DASHBOARD_PORT`` is set; served by the bot process on its event loop. Access: ``/dashboard`` in a chat
gives an admin a signed link to that chat's pages (see ``auth``).
"""

from bot.core.errors import DashboardError
from bot.dashboard.server import DashboardLinks, DashboardServer, bind, build_dashboard, serve, signing_key
from bot.dashboard.web import create_app

__all__ = [
    "DashboardError",
    "DashboardLinks",
    "DashboardServer",
    "bind",
    "build_dashboard",
    "create_app",
    "serve",
    "signing_key",
]

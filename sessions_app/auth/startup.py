"""What a serving process says about authorization when it starts."""

from __future__ import annotations

import logging

from sessions_app.auth.conf import auth_settings

logger = logging.getLogger("sessions_app.auth")


def announce_authorization() -> None:
    """Settle the settings now (a bad value stops the node before it serves), and say so loudly when it is off."""
    settings = auth_settings()
    if settings.enabled:
        logger.info("Authorization: %s tokens for %s", settings.mode.value, settings.resource)
    else:
        logger.warning(
            "Authorization is OFF (MCP_AUTH=off): anyone who can reach /mcp and /graphql may call every"
            " tool and mutation. Set MCP_AUTH to embedded, jwt or introspection outside development."
        )

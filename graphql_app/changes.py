"""Every saved decision record is announced to MCP clients, on every node, once it commits.

Hooked to `post_save`, so changes made through GraphQL, the admin, MCP tools or
a management command are all announced the same way.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from sessions_app.cluster.change_feed import Change, publish_on_commit

from .mcp.resources import uri_of
from .models import Decision


@receiver(post_save, sender=Decision, dispatch_uid="graphql_app.changes.announce")
def announce(sender: type[Decision], instance: Decision, created: bool, **kwargs: Any) -> None:
    # A new record changes the list; any save changes the record itself.
    publish_on_commit(Change(uri=uri_of(instance.number), list_changed=created))

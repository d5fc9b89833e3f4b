"""Admin page "Active MCP sessions": every session in the cluster, read from the registry.

The model is an unmanaged stand-in (models.py); this ModelAdmin replaces its
views with two of its own, both behind `admin_site.admin_view` (active staff
only, CSRF-protected): the list, and a POST-only close that goes through the
session manager's one close path. The database is never queried.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from sessions_app.cluster.registry import RegistryUnavailable, session_registry
from sessions_app.cluster.routing import short_id
from sessions_app.models import ActiveSession
from sessions_app.operations import close_sessions, find_by_handle, session_rows
from sessions_app.session.close_reason import CloseReason

logger = logging.getLogger(__name__)


# ModelAdmin is generic only in django-stubs; at run time it cannot be subscripted.
if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[ActiveSession]
else:
    _ModelAdmin = admin.ModelAdmin


@admin.register(ActiveSession)
class ActiveSessionAdmin(_ModelAdmin):
    # Any active staff user may look and close; nobody adds, changes or deletes
    # through the model, which has no rows.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_staff(request)

    def has_view_permission(self, request: HttpRequest, obj: ActiveSession | None = None) -> bool:
        return _is_staff(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ActiveSession | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ActiveSession | None = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        # Only our two views: the inherited change, delete and history URLs
        # would query a table that does not exist.
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("", self.admin_site.admin_view(self.changelist_view), name=f"{prefix}_changelist"),
            path("<str:handle>/close/", self.admin_site.admin_view(self.close_view), name=f"{prefix}_close"),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, object] | None = None) -> HttpResponse:
        node_filter = request.GET.get("node", "")
        try:
            rows, live = session_rows(session_registry())
        except RegistryUnavailable as exc:
            logger.warning("The admin could not list MCP sessions: %s", exc)
            messages.error(request, f"The session registry is unavailable: {exc}")
            rows, live = [], {}
        # Filter links: every node that holds a record or has a heartbeat.
        per_node = dict.fromkeys(live, 0)
        for row in rows:
            per_node[row.record.node_id] = per_node.get(row.record.node_id, 0) + 1
        context = {
            **self.admin_site.each_context(request),
            "title": self.opts.verbose_name_plural,
            "opts": self.opts,
            "rows": [row for row in rows if not node_filter or row.record.node_id == node_filter],
            "total": len(rows),
            "nodes": [(node, count, node in live) for node, count in sorted(per_node.items())],
            "node_filter": node_filter,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/sessions_app/active_sessions.html", context)

    def close_view(self, request: HttpRequest, handle: str) -> HttpResponse:
        """Close the session whose handle is `handle`, then back to the list with a message."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        back = self._changelist_url(request.POST.get("node", ""))
        try:
            record = find_by_handle(session_registry(), handle)
        except RegistryUnavailable as exc:
            messages.error(request, f"The session registry is unavailable, nothing was closed: {exc}")
            return HttpResponseRedirect(back)
        if record is None:
            messages.info(request, "That MCP session is already gone.")
            return HttpResponseRedirect(back)
        known = close_sessions([record.session_id], CloseReason.OPERATOR)[record.session_id]
        logger.info("Admin user %s closed MCP session %s", request.user, short_id(record.session_id))
        if known:
            messages.success(request, f"Closed MCP session {short_id(record.session_id)} on node {record.node_id}.")
        else:
            messages.info(request, f"MCP session {short_id(record.session_id)} was already gone.")
        return HttpResponseRedirect(back)

    def _changelist_url(self, node_filter: str) -> str:
        url = reverse(f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_changelist")
        return f"{url}?{urlencode({'node': node_filter})}" if node_filter else url


def _is_staff(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_staff)

"""`manage.py mcp_sessions list|close|reap`: the admin's session page, for a shell.

It reads the registry this process's settings choose: with REDIS_URL set, the
cluster's; without it, an in-process registry that only a server process
fills, so `list` shows nothing there.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app.cluster.registry import RegistryUnavailable, session_registry
from sessions_app.cluster.routing import short_id
from sessions_app.operations import close_sessions, reap_dead_owners, session_rows
from sessions_app.session.close_reason import CloseReason


class Command(BaseCommand):
    help = "List, close and reap the MCP sessions in the session registry."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{list,close,reap}")
        listing = actions.add_parser("list", help="One line per session record.")
        listing.add_argument("--node", default="", help="Only the sessions of this node id.")
        listing.add_argument("--json", action="store_true", help="A JSON array, with full session ids.")
        closing = actions.add_parser("close", help="Close sessions through the session manager's one close path.")
        closing.add_argument("session_ids", nargs="+", metavar="SESSION_ID", help="Full session ids (list --json).")
        reaping = actions.add_parser("reap", help="Delete the records of sessions whose node is not alive.")
        reaping.add_argument(
            "--grace",
            type=_seconds,
            default=0.0,
            help="Only owners still dead after this many seconds (the command waits that long). Default 0: now.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "list":
                self._list(options["node"], as_json=options["json"])
            elif options["action"] == "close":
                self._close(options["session_ids"])
            else:
                self._reap(options["grace"])
        except RegistryUnavailable as exc:
            raise CommandError(f"The session registry is unavailable: {exc}") from exc

    def _list(self, node_id: str, *, as_json: bool) -> None:
        rows, _ = session_rows(session_registry())
        rows = [row for row in rows if not node_id or row.record.node_id == node_id]
        if as_json:
            listed = [
                {
                    **row.record.to_dict(),
                    "short_id": row.short_id,
                    "alive": row.alive,
                    "age_seconds": round(row.age, 3),
                    "ttl_seconds": row.ttl,
                }
                for row in rows
            ]
            self.stdout.write(json.dumps(listed, indent=2))
            return
        if not rows:
            self.stdout.write(f"No MCP sessions{f' on node {node_id}' if node_id else ''}.")
        for row in rows:
            self.stdout.write(
                f"{row.short_id}  {row.record.node_id}  {'alive' if row.alive else 'dead'}"
                f"  age {row.age_text}  ttl {row.ttl_text}"
                f"  client {row.client or '-'}  protocol {row.record.protocol_version or '-'}"
            )

    def _close(self, session_ids: list[str]) -> None:
        # Ask the registry first: the close path itself shrugs off an
        # unreachable registry, and would leave us unable to tell.
        registry = session_registry()
        for session_id in session_ids:
            registry.get(session_id)
        for session_id, known in close_sessions(session_ids, CloseReason.OPERATOR).items():
            if known:
                self.stdout.write(f"closed {short_id(session_id)}")
            else:
                self.stdout.write(f"not found {short_id(session_id)}")

    def _reap(self, grace: float) -> None:
        if grace:
            self.stdout.write(f"Looking for dead nodes now and again in {grace:g}s ...")
        removed = reap_dead_owners(session_registry(), grace)
        self.stdout.write(f"Reaped {removed} session record{'' if removed == 1 else 's'} of nodes that are not alive.")


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if seconds < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return seconds

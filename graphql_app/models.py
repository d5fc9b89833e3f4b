"""The decision log's table (numbered architecture decision records, ADRs), and the
answers kept for GraphQL requests sent with an Idempotency-Key.

Rows change only through `graphql_app.decisions` (GraphQL, the admin and the
MCP server all call it), which numbers records, checks every field and allows
only the status changes a decision log knows. Each write goes through
`Model.save()`, so `post_save` fires for every record that changed.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

# The categories a record may have. A tuple, not a model: the list changes
# with the product, through a code review, and tools (GraphQL, MCP completion)
# offer it as it stands.
CATEGORIES = ("Product", "Backend", "Frontend", "Auth", "iOS", "Android", "Infra", "Real-Time", "Data", "Security")

TITLE_MAX_LENGTH = 200
CATEGORY_MAX_LENGTH = 40


def category_choices() -> list[tuple[str, str]]:
    # A callable, so migrations reference it instead of copying the list:
    # adding a category needs no migration.
    return [(category, category) for category in CATEGORIES]


class Decision(models.Model):
    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        ACCEPTED = "accepted", "Accepted"
        DEPRECATED = "deprecated", "Deprecated"
        SUPERSEDED = "superseded", "Superseded"

    number = models.PositiveIntegerField(unique=True, editable=False)
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROPOSED)
    date = models.DateField(default=timezone.localdate)
    category = models.CharField(max_length=CATEGORY_MAX_LENGTH, choices=category_choices)
    context = models.TextField()
    decision = models.TextField()
    consequences = models.TextField()
    # Points at the successor's *number* (to_field), so `superseded_by_id` is the
    # number readers see ("Superseded by ADR 7") without a join. PROTECT: a
    # record that supersedes another cannot vanish from under it.
    superseded_by = models.ForeignKey(
        "self",
        to_field="number",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="supersedes",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("number",)

    def __str__(self) -> str:
        return f"ADR {self.number}: {self.title}"


class IdempotentRequest(models.Model):
    """One caller's use of one Idempotency-Key on /graphql (graphql_app/api/idempotency.py).

    Created before the request runs (the unique constraint makes that the one
    claim, across all nodes); `status` and `body` are set once it has been
    answered, so a row without them is a request still running, or one whose
    node died before answering.
    """

    caller = models.CharField(max_length=300)
    key = models.CharField(max_length=200)
    # SHA-256 of the request body: the same key with another body is refused.
    request_hash = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(null=True)
    body = models.BinaryField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = (models.UniqueConstraint(fields=("caller", "key"), name="one_use_per_caller_and_key"),)

    def __str__(self) -> str:
        return f"{self.caller} {self.key}"

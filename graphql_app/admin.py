"""Admin for the decision log. Every write goes through graphql_app.decisions.

Adding proposes (the next number, status proposed); changing edits the text of
a proposed or accepted record; deprecated and superseded records are shown
read-only. Status changes are the list's actions. Nothing is ever deleted: a
decision log keeps its history, and a record that no longer holds is
deprecated or superseded instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from . import decisions
from .models import Decision

# ModelAdmin is generic only in django-stubs; at run time it cannot be subscripted.
if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Decision]
    _ModelForm = forms.ModelForm[Decision]
else:
    _ModelAdmin = admin.ModelAdmin
    _ModelForm = forms.ModelForm


ADD_FIELDS = ("title", "category", "date", "context", "decision", "consequences")
# Shown but not editable once proposed: the number and date are the record's
# identity, and status and links change only through the list's actions.
CHANGE_READONLY_FIELDS = ("number", "status", "superseded_by", "date", "created_at", "updated_at")
CHANGE_FIELDS = (*CHANGE_READONLY_FIELDS[:4], *decisions.EDITABLE_FIELDS, *CHANGE_READONLY_FIELDS[4:])


class DecisionForm(_ModelForm):
    """Checks the text fields with the domain's own rules, so a refusal shows on the form."""

    class Meta:
        model = Decision
        fields = ADD_FIELDS

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean() or {}
        given = {name: cleaned_data[name] for name in decisions.EDITABLE_FIELDS if name in cleaned_data}
        try:
            cleaned_data.update(decisions.clean_fields(given))
        except ValidationError as exc:
            self.add_error(None, exc)
        return cleaned_data


@admin.register(Decision)
class DecisionAdmin(_ModelAdmin):
    form = DecisionForm
    list_display = ("number", "title", "status", "category", "date", "superseded_by")
    list_display_links = ("number", "title")
    list_filter = ("status", "category")
    search_fields = ("title", "context", "decision", "consequences")
    ordering = ("number",)
    actions = ("accept_selected", "deprecate_selected")

    def get_fields(self, request: HttpRequest, obj: Decision | None = None) -> tuple[str, ...]:
        return ADD_FIELDS if obj is None else CHANGE_FIELDS

    def get_readonly_fields(self, request: HttpRequest, obj: Decision | None = None) -> tuple[str, ...]:
        return () if obj is None else CHANGE_READONLY_FIELDS

    def has_change_permission(self, request: HttpRequest, obj: Decision | None = None) -> bool:
        if obj is not None and obj.status in decisions.FINAL_STATUSES:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Decision | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Decision, form: forms.ModelForm[Decision], change: bool) -> None:
        values = {name: form.cleaned_data[name] for name in decisions.EDITABLE_FIELDS}
        if change:
            saved = decisions.edit(obj.number, **values)
        else:
            saved = decisions.propose(**values, date=form.cleaned_data.get("date"))
        # The admin goes on with `obj` (its log entry, the redirect): make it the saved row.
        obj.pk = saved.pk
        obj.refresh_from_db()

    @admin.action(description="Accept selected decisions", permissions=["change"])
    def accept_selected(self, request: HttpRequest, queryset: QuerySet[Decision]) -> None:
        self._apply(request, queryset, decisions.accept, "accepted")

    @admin.action(description="Deprecate selected decisions", permissions=["change"])
    def deprecate_selected(self, request: HttpRequest, queryset: QuerySet[Decision]) -> None:
        self._apply(request, queryset, decisions.deprecate, "deprecated")

    def _apply(
        self,
        request: HttpRequest,
        queryset: QuerySet[Decision],
        operation: Callable[[int], Decision],
        done: str,
    ) -> None:
        changed = []
        for number in queryset.values_list("number", flat=True):
            try:
                operation(number)
            except ValidationError as exc:
                # Every refusal of these operations names the record already.
                self.message_user(request, " ".join(exc.messages), messages.WARNING)
            else:
                changed.append(number)
        if changed:
            self.message_user(request, f"{done.capitalize()}: {', '.join(f'ADR {n}' for n in changed)}.")

"""The admin's handle on the cluster's sessions, which live in the registry, not in the database.

An unmanaged model without a table (the django-rq pattern): it exists so that
the admin lists "Active MCP sessions" in its index and gives them URLs and
permissions. Nothing ever queries it; its ModelAdmin (admin.py) reads the
session registry instead.
"""

from django.db import models


class ActiveSession(models.Model):
    class Meta:
        managed = False
        verbose_name = "Active MCP session"
        verbose_name_plural = "Active MCP sessions"
        # Only viewing means anything: there is nothing to add, change or delete.
        default_permissions = ("view",)

"""Admin for partner API keys: created with the key shown once, revoked, never recovered.

Registered from partnerships/admin.py. Only users with `manage_apikey` (the Editor group)
see or touch keys; Researchers, who may add and change every curated record, may not.
"""

from django.contrib import admin, messages
from django.http import HttpResponse
from django.template import engines
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext

from .models import ApiKey

PERMISSION = "partnerships.manage_apikey"

# Inline rather than a template file: the page exists for one response per key.
_SHOW_ONCE = engines["django"].from_string(
    """{% extends "admin/base_site.html" %}
{% load static %}
{% block title %}API key for {{ key.name }}{% endblock %}
{% block extrastyle %}{{ block.super }}
<link rel="stylesheet" href="{% static 'css/admin.css' %}">{% endblock %}
{% block content %}
<h1>API key for {{ key.name }}</h1>
<p>Give this key to the partner now. It is shown only this once: the atlas keeps a hash,
not the key, and cannot show it again. If it is lost, revoke it and create a new one.</p>
<p><code id="api-key">{{ raw_key }}</code></p>
<p>The partner sends it with every request, in the <code>X-API-Key</code> header:</p>
<pre>curl -H "X-API-Key: {{ raw_key }}" {{ api_root }}</pre>
<p><a href="{{ changelist }}">Back to the API keys</a></p>
{% endblock %}"""
)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "limit", "created_at", "created_by", "state"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["created_by"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_at", "created_by", "revoked_at"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "requests_per_hour"]
        return ["name", "requests_per_hour", *self.readonly_fields]

    @admin.display(description="requests per hour")
    def limit(self, key):
        return key.requests_per_hour or "standard"

    @admin.display(description="state", ordering="revoked_at")
    def state(self, key):
        return f"revoked {key.revoked_at:%Y-%m-%d}" if key.is_revoked else "active"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
            # On the request, not on this admin shared by every thread.
            request.new_api_key = obj.generate()
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        context = {
            **self.admin_site.each_context(request),
            "key": obj,
            "raw_key": request.new_api_key,
            "api_root": request.build_absolute_uri(reverse("api:api-root")),
            "changelist": reverse("admin:partnerships_apikey_changelist"),
            "opts": self.model._meta,
        }
        response = HttpResponse(_SHOW_ONCE.render(context, request))
        # The key must not linger in a cache or in the browser's history.
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        count = queryset.live().update(revoked_at=timezone.now())
        self.message_user(
            request,
            ngettext("Revoked %d key.", "Revoked %d keys.", count) % count,
            messages.SUCCESS,
        )

    # Keys are revoked, not deleted, so that the record of who held one stays.
    def has_delete_permission(self, request, obj=None):
        return False

    def has_module_permission(self, request):
        return request.user.has_perm(PERMISSION)

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(PERMISSION)

    def has_add_permission(self, request):
        return request.user.has_perm(PERMISSION)

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm(PERMISSION)

"""The moderation queue of readers' corrections."""

from django.contrib import admin, messages
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from .models import Correction, CorrectionStatus

# Corrections from readers ------------------------------------------------------------------
# Readers send them from the public pages (partnerships/corrections.py); curators read them
# here and accept (linking the change they made) or decline (saying why). What the reader
# wrote stays as written: every field of theirs is read-only.


@admin.register(Correction)
class CorrectionAdmin(admin.ModelAdmin):
    list_display = ["excerpt", "about", "status", "created_at", "decided_by"]
    list_filter = ["status"]
    list_select_related = ["city", "tie__city_a", "tie__city_b", "decided_by"]
    search_fields = ["what_is_wrong", "should_be", "email"]
    radio_fields = {"status": admin.HORIZONTAL}
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = [
        "about_links", "what_is_wrong", "should_be", "source_url", "email", "created_at",
        "ip_hash", "decided_by", "decided_at",
    ]  # fmt: skip
    fieldsets = [
        (
            "What the reader wrote",
            {
                "fields": [
                    "about_links",
                    "what_is_wrong",
                    "should_be",
                    "source_url",
                    "email",
                    "created_at",
                    "ip_hash",
                ]
            },
        ),
        (
            "Decision",
            {
                "fields": ["status", "change_url", "decline_reason", "decided_by", "decided_at"],
                "description": "Accept once you have made the change, and link it; decline "
                "with a reason (no source, the source says otherwise, spam).",
            },
        ),
    ]
    actions = ["decline_as_spam"]

    @admin.display(description="what is wrong")
    def excerpt(self, obj):
        return Truncator(obj.what_is_wrong).chars(80)

    @admin.display(description="about")
    def about(self, obj):
        return obj.about

    @admin.display(description="about")
    def about_links(self, obj):
        record = obj.about
        meta = record._meta
        edit = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[record.pk])
        return format_html(
            '{} — <a href="{}">public page</a> · <a href="{}">edit the {}</a>',
            record, record.get_absolute_url(), edit, meta.verbose_name,
        )  # fmt: skip

    def has_add_permission(self, request):
        return False  # readers write them, on the public pages

    def save_model(self, request, obj, form, change):
        if "status" in form.changed_data:
            obj.decide(request.user)
        super().save_model(request, obj, form, change)

    @admin.action(description="Decline the selected as spam", permissions=["change"])
    def decline_as_spam(self, request, queryset):
        count = queryset.filter(status=CorrectionStatus.NEW).update(
            status=CorrectionStatus.DECLINED,
            decline_reason="Spam.",
            decided_by=request.user,
            decided_at=timezone.now(),
        )
        self.message_user(request, f"Declined {count} as spam.", messages.SUCCESS)

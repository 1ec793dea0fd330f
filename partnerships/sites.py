"""The atlas's admin site: Django's, with the curation queue on its index and a page of its
own for the queue's counts. Installed through `AtlasAdminConfig` in INSTALLED_APPS, so that
every `@admin.register` in the project registers here."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.urls import path


class AtlasAdminSite(admin.AdminSite):
    site_header = "cityDiplomacy — curation"
    site_title = "cityDiplomacy curation"
    index_title = "Atlas of city diplomacy: curate cities, ties, networks and sources"

    def get_urls(self):
        from . import admin_views

        needs_attention = self.admin_view(
            lambda request: admin_views.needs_attention_view(request, self)
        )
        return [
            path("needs-attention/", needs_attention, name="needs_attention"),
            *super().get_urls(),
        ]

    def index(self, request, extra_context=None):
        from . import curation

        queue = curation.visible_queue(request.user)
        return super().index(request, {"curation_queue": queue, **(extra_context or {})})


class AtlasAdminConfig(AdminConfig):
    default_site = "partnerships.sites.AtlasAdminSite"

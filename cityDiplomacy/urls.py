from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "cityDiplomacy — curation"
admin.site.site_title = "cityDiplomacy curation"
admin.site.index_title = "Atlas of city diplomacy: curate cities, ties, networks and sources"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", RedirectView.as_view(pattern_name="api:docs"), name="api"),
    path("api/v1/", include("partnerships.api")),
    path("", include("partnerships.urls")),
]

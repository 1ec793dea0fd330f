from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", RedirectView.as_view(pattern_name="api:docs"), name="api"),
    path("api/v1/", include("partnerships.api")),
    path("", include("partnerships.urls")),
]

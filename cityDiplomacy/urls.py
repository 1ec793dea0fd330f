from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from partnerships import operations

handler400 = operations.handler400
handler404 = operations.handler404
handler500 = operations.handler500

urlpatterns = [
    # For load balancers: the process is up; the database and the cache answer.
    path("healthz", operations.healthz, name="healthz"),
    path("readyz", operations.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/", RedirectView.as_view(pattern_name="api:docs"), name="api"),
    path("api/v1/", include("partnerships.api")),
    path("", include("partnerships.urls")),
]

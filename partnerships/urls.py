from django.urls import path

from . import views

app_name = "partnerships"

urlpatterns = [
    path("organizations/<slug:slug>/", views.organization_detail, name="organization_detail"),
    path("ties/<int:pk>/", views.tie_detail, name="tie_detail"),
]

from django.urls import path

from . import views

app_name = "partnerships"

urlpatterns = [
    path("compare/", views.compare, name="compare"),
    path("compare/cities.json", views.city_suggestions, name="city_suggestions"),
    path("organizations/", views.organization_list, name="organization_list"),
    path("organizations/<slug:slug>/", views.organization_detail, name="organization_detail"),
    path("ties/", views.tie_list, name="tie_list"),
    path("ties/<int:pk>/", views.tie_detail, name="tie_detail"),
]

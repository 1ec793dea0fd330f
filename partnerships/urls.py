from django.urls import path

from . import corrections, data, network, statistics, views

app_name = "partnerships"

urlpatterns = [
    path("", views.home, name="home"),
    path("cities/", views.city_list, name="city_list"),
    path("cities/<slug:slug>/", views.city_detail, name="city_detail"),
    path("cities/<slug:slug>/network/", network.city_network, name="city_network"),
    path("cities/<slug:slug>/correction/", corrections.city_correction, name="city_correction"),
    path("sources/", views.source_list, name="source_list"),
    path("sources/<slug:slug>/", views.source_detail, name="source_detail"),
    path("about/", views.about, name="about"),
    path("compare/", views.compare, name="compare"),
    path("compare/cities.json", views.city_suggestions, name="city_suggestions"),
    path("organizations/", views.organization_list, name="organization_list"),
    path("organizations/<slug:slug>/", views.organization_detail, name="organization_detail"),
    path("ties/", views.tie_list, name="tie_list"),
    path("data/", data.data_index, name="data"),
    path("data/<str:version>/", data.release_page, name="release"),
    path("data/<str:version>/<str:name>", data.release_file, name="release_file"),
    path("statistics/", statistics.statistics_page, name="statistics"),
    path("statistics/<slug:chart>.csv", statistics.statistics_csv, name="statistics_csv"),
    path("countries/<str:code>/", statistics.country_detail, name="country_detail"),
    path("ties/<int:pk>/", views.tie_detail, name="tie_detail"),
    path("ties/<int:pk>/correction/", corrections.tie_correction, name="tie_correction"),
]

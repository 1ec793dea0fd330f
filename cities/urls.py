from django.urls import path

from . import views

app_name = "cities"

urlpatterns = [
    path("", views.home, name="home"),
    path("cities/", views.city_list, name="city_list"),
    path("cities/<slug:slug>/", views.city_detail, name="city_detail"),
    path("sources/", views.source_list, name="source_list"),
    path("sources/<slug:slug>/", views.source_detail, name="source_detail"),
    path("about/", views.about, name="about"),
]

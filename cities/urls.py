from django.urls import path

from . import views

app_name = "cities"

urlpatterns = [
    path("", views.home, name="home"),
    path("cities/<slug:slug>/", views.city_detail, name="city_detail"),
    path("sources/<slug:slug>/", views.source_detail, name="source_detail"),
]

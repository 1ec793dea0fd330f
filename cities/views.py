from django.shortcuts import get_object_or_404, render

from .models import City, Source


def home(request):
    return render(request, "home.html", {"cities": City.objects.order_by("name")[:50]})


def city_detail(request, slug):
    city = get_object_or_404(City, slug=slug)
    return render(request, "cities/city_detail.html", {"city": city})


def source_detail(request, slug):
    source = get_object_or_404(Source, slug=slug)
    return render(request, "cities/source_detail.html", {"source": source})

"""A city's network: its partners and their partners, laid out on the server as SVG."""

from django.http import Http404


def city_network(request, slug):
    raise Http404("Not built yet.")

"""The whole field at a glance: statistics of the atlas and a page per country."""

from django.http import Http404


def statistics_page(request):
    raise Http404("Not built yet.")


def statistics_csv(request, chart):
    raise Http404("Not built yet.")


def country_detail(request, code):
    raise Http404("Not built yet.")

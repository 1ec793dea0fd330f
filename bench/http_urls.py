"""The project's URLs plus two reference views that bench/bench_http.py measures beside them.

- /bench/floor/: one tiny template rendered, no query: what any Django page costs at least.
- /bench/bare-ties/: the 100 ties of the API's first page (start date, undated last, then id)
  with both cities, read with .values() into a JsonResponse: the same rows with nothing else.
"""

from django.db.models import F
from django.http import HttpResponse, JsonResponse
from django.template import engines
from django.urls import include, path

from partnerships.models import Tie

PAGE = 100
FIELDS = [
    "id", "city_a__slug", "city_a__name", "city_a__country", "city_a__wikidata_id",
    "city_b__slug", "city_b__name", "city_b__country", "city_b__wikidata_id",
    "kind", "status", "start", "end", "date_basis", "summary", "verification",
    "created_at", "updated_at",
]  # fmt: skip

_template = engines["django"].from_string("<!doctype html><title>floor</title><p>{{ n }}</p>")


def floor(request):
    return HttpResponse(_template.render({"n": 1}, request))


def bare_ties(request):
    ties = Tie.objects.order_by(F("start_lower").asc(nulls_last=True), "id")
    return JsonResponse({"results": list(ties.values(*FIELDS)[:PAGE])})


urlpatterns = [
    path("bench/floor/", floor),
    path("bench/bare-ties/", bare_ties),
    path("", include("cityDiplomacy.urls")),
]

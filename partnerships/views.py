from django.shortcuts import get_object_or_404, render

from .models import Organization, Tie


def organization_detail(request, slug):
    organization = get_object_or_404(Organization, slug=slug)
    return render(request, "partnerships/organization_detail.html", {"organization": organization})


def tie_detail(request, pk):
    tie = get_object_or_404(Tie.objects.for_profile(), pk=pk)
    return render(request, "partnerships/tie_detail.html", {"tie": tie})

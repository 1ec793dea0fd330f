"""Corrections from readers: "Suggest a correction" on every city profile and tie page.

Anyone may send one, without an account; it goes to the curators' queue in the admin
(partnerships/admin.py) and never appears on a public page. The form is guarded as public
forms are: Django's CSRF check, a limit per address counted in the shared cache as the API
counts its requests, a field people leave empty and programs fill in, and size limits. What
the reader typed is only ever shown escaped.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.utils.crypto import salted_hmac
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from cities.models import City

from .apikeys import ApiThrottle, parse_rate
from .models import Correction, Tie
from .views import not_found

RATE = "5/hour"
HONEYPOT = "website"
HONEYPOT_FILLED = (
    "The field “Leave this empty” was filled in. It is hidden from people and filled in by "
    "programs that send spam, so nothing was saved. If you are a person, empty it and send "
    "the suggestion again."
)


def sender_hash(address):
    """A keyed hash of a network address: the same address always gives the same hash, which
    tells suggestions from one sender apart without keeping the address."""
    return salted_hmac(
        "partnerships.corrections.sender", address or "", algorithm="sha256"
    ).hexdigest()


class CorrectionLimit(ApiThrottle):
    """RATE suggestions per sender, counted like the API's limits (fixed windows with an
    atomic incr() in the default cache, Redis in production), for the address the API sees
    (REST_FRAMEWORK's NUM_PROXIES decides which X-Forwarded-For entry to trust)."""

    def identify(self, request):
        return ("correction", sender_hash(self.get_ident(request)), *parse_rate(RATE))


class CorrectionForm(forms.ModelForm):
    source_url = forms.URLField(
        label="Where it is written",
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="The address of a page or document that says so: the city's own site, the "
        "agreement, a news report.",
        error_messages={
            "invalid": "Give the source as a whole web address, starting with https://.",
            "max_length": "This address is too long: give a shorter link to the source.",
        },
    )
    # Visually hidden and out of the tab order; screen readers read its label.
    website = forms.CharField(
        label="Leave this empty",
        required=False,
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )

    class Meta:
        model = Correction
        fields = ["what_is_wrong", "should_be", "source_url", "email"]
        labels = {
            "what_is_wrong": "What is wrong",
            "should_be": "What it should be",
            "email": "Your e-mail",
        }
        help_texts = {
            "what_is_wrong": "The fact as the page shows it, in a sentence or two.",
            "should_be": "The right fact, as precisely as you know it.",
            "email": "Only if a curator may write to ask you about it. It is never shown on "
            "the site.",
        }
        widgets = {
            "what_is_wrong": forms.Textarea(attrs={"rows": 4}),
            "should_be": forms.Textarea(attrs={"rows": 4}),
            "email": forms.EmailInput(attrs={"autocomplete": "email"}),
        }
        error_messages = {
            "what_is_wrong": {
                "required": "Say what is wrong on the page.",
                "max_length": "Please keep this to %(limit_value)d characters "
                "(it has %(show_value)d).",
            },
            "should_be": {
                "required": "Say what it should be, as far as you know.",
                "max_length": "Please keep this to %(limit_value)d characters "
                "(it has %(show_value)d).",
            },
            "email": {
                "invalid": "This does not look like an e-mail address: check it, or leave the "
                "field empty.",
            },
        }

    def clean(self):
        if self.cleaned_data.get(HONEYPOT):
            raise ValidationError(HONEYPOT_FILLED, code="honeypot")
        return super().clean()


def _correction(request, about, about_name):
    """The form for one city or tie: shown, checked, stored, or refused."""
    context = {"about": about, "about_name": about_name, "about_url": about.get_absolute_url()}
    if request.method == "GET" and "sent" in request.GET:
        return render(request, "partnerships/correction_thanks.html", context)
    if request.method != "POST":
        return render(
            request, "partnerships/correction_form.html", {**context, "form": CorrectionForm()}
        )

    # Every attempt counts, so that a program cannot try its luck without limit.
    limit = CorrectionLimit()
    if not limit.allow_request(request, None):
        wait = limit.wait()
        # The reader keeps what they wrote, to send later.
        kept = {name: request.POST.get(name, "") for name in CorrectionForm.Meta.fields}
        response = render(
            request,
            "partnerships/correction_form.html",
            {**context, "form": CorrectionForm(initial=kept), "retry_minutes": -(-wait // 60)},
            status=429,
        )
        response["Retry-After"] = str(wait)
        return response

    form = CorrectionForm(request.POST)
    if not form.is_valid():
        return render(
            request, "partnerships/correction_form.html", {**context, "form": form}, status=400
        )
    correction = form.save(commit=False)
    setattr(correction, "city" if isinstance(about, City) else "tie", about)
    correction.ip_hash = sender_hash(limit.get_ident(request))
    correction.save()
    # 303: reloading the thanks page does not send the suggestion again.
    return HttpResponseRedirect(f"{request.path}?sent", status=303)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def city_correction(request, slug):
    city = City.objects.filter(slug=slug).first()
    if city is None:
        return not_found(request, "city", slug)
    return _correction(request, city, city.name)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def tie_correction(request, pk):
    tie = Tie.objects.select_related("city_a", "city_b").filter(pk=pk).first()
    if tie is None:
        return not_found(request, "tie", pk)
    return _correction(request, tie, f"{tie.city_a.name} – {tie.city_b.name}")

"""The forms of the places: the city form with its pick from the offline gazetteer."""

from django import forms
from django.contrib.admin.widgets import AutocompleteMixin, get_select2_language
from django_countries import countries

from . import gazetteer
from .models import City, CityCitation


class GazetteerSelect(forms.Select):
    """A search-as-you-type list of GeoNames places, with the admin's own select2.

    The admin's autocomplete script needs only the class and the data attributes; the
    results come from CityAdmin's gazetteer view rather than from a model's autocomplete.
    """

    media = AutocompleteMixin.media

    def __init__(self, url="", attrs=None):
        super().__init__(attrs)
        self.url = url
        self.i18n_name = get_select2_language()

    def build_attrs(self, base_attrs, extra_attrs=None):
        attrs = super().build_attrs(base_attrs, extra_attrs)
        attrs.update(
            {
                "class": "admin-autocomplete",
                "data-ajax--cache": "true",
                "data-ajax--delay": 250,
                "data-ajax--type": "GET",
                "data-ajax--url": self.url,
                "data-theme": "admin-autocomplete",
                "data-allow-clear": "true",
                "data-placeholder": "Type a name in any spelling or script",
                "lang": self.i18n_name,
                "data-width": "32em",  # read by Select2; no style attribute (CSP)
            }
        )
        return attrs

    def optgroups(self, name, value, attr=None):
        # The only option is the place chosen, shown again when the form comes back.
        options = [self.create_option(name, "", "", False, 0)]
        entry = gazetteer_entry(value[0]) if value and value[0] else None
        if entry is not None:
            options.append(self.create_option(name, entry.geonames_id, label(entry), True, 1))
        return [(None, options, 0)]


def gazetteer_entry(geonames_id):
    """The GeoNames place with this id, or None for anything that is not one."""
    try:
        return gazetteer.entry(int(geonames_id))
    except (TypeError, ValueError):
        return None


def label(entry):
    """How a place reads in the pick-list: enough to tell apart two places of one name."""
    return (
        f"{entry.name}, {countries.name(entry.country) or entry.country} · "
        f"{entry.population:,} inhabitants · {entry.latitude:.3f}, {entry.longitude:.3f}"
    )


class CityForm(forms.ModelForm):
    """The city form, with a pick from the offline gazetteer that fills in the name, country,
    coordinates and GeoNames id, so that curators need not type coordinates."""

    gazetteer_place = forms.IntegerField(
        label="Pick from the gazetteer",
        required=False,
        help_text="GeoNames places of more than 15,000 inhabitants. Picking one sets the "
        "country, coordinates and GeoNames id (and the name when it is empty), and cites "
        "GeoNames for them.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "name" in self.fields and "gazetteer_place" in self.fields:
            # A pick fills in an empty name; clean() asks for one when there is neither.
            self.fields["name"].required = False

    def clean(self):
        data = super().clean()
        picked = data.get("gazetteer_place")
        if picked is None:
            if "name" in self.fields and not data.get("name") and "name" not in self.errors:
                self.add_error("name", "Give the city's name, or pick it from the gazetteer.")
            return data
        entry = gazetteer_entry(picked)
        if entry is None:
            self.add_error("gazetteer_place", "There is no such place in the gazetteer.")
            return data
        taken = City.objects.filter(geonames_id=entry.geonames_id).exclude(pk=self.instance.pk)
        if taken.exists():
            self.add_error(
                "gazetteer_place",
                f"{entry.name} is in the atlas already, as {taken.first()}: edit that city, "
                "or merge the two.",
            )
            return data
        data["name"] = data.get("name") or entry.name
        data.update(
            country=entry.country,
            latitude=entry.latitude,
            longitude=entry.longitude,
            geonames_id=entry.geonames_id,
        )
        self.gazetteer_entry = entry
        return data

    def _post_clean(self):
        # The values the pick set must reach the instance even where the fieldset left them
        # out; construct_instance copies only the form's own fields.
        super()._post_clean()
        entry = getattr(self, "gazetteer_entry", None)
        if entry is not None:
            for name in ("country", "latitude", "longitude", "geonames_id"):
                setattr(self.instance, name, self.cleaned_data[name])


def cite_gazetteer(city, entry, user):
    """Cite GeoNames for what a pick set, creating its Source the first time."""
    source = gazetteer.source(user, f"Picked GeoNames {entry.geonames_id} from the gazetteer")
    citation, created = CityCitation.objects.get_or_create(
        city=city, source=source, locator=gazetteer.locator(entry)
    )
    return citation if created else None

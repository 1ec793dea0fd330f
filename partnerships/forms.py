"""The forms of the curation admin: a tie, an import upload, a merge of two cities, and a
pair of cities judged not to be duplicates."""

import uuid
from pathlib import Path

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.urls import reverse
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe

from cities.models import City

from .importing import (
    FIELDS,
    ImportFileError,
    dataset_source,
    parse_mapping,
    read_table,
    resolve_mapping,
)
from .models import KIND_ALREADY_STATED, Tie, TieKind

# Big enough for the shared Wikipedia file ten times over; bigger files belong to the command.
IMPORT_MAX_BYTES = 20 * 1024 * 1024


class TieForm(forms.ModelForm):
    class Meta:
        model = Tie
        fields = [
            "city_a", "city_b", "kind", "status", "start", "end", "date_basis", "topics",
            "summary", "verification", "curator_notes",
        ]  # fmt: skip
        labels = {
            "city_a": "City",
            "city_b": "Partner city",
            "kind": "Kind of tie",
            "start": "Start date",
            "end": "End date",
            "date_basis": "The start date marks",
        }
        help_texts = {
            "city_b": "Either order will do: the tie shows on both cities.",
            "kind": "A sister, partner or friendship tie for two cities whose tie is recorded "
            "as a twinning of unstated kind states that tie's kind (its sources and history "
            "stay) rather than adding a second tie.",
            "end": "Only when the tie ended or was suspended and a source says when.",
        }

    def add_error(self, field, error):
        # The model words the refusal of a twinning of unstated kind beside a stated one for
        # every client; here the tie it names becomes a link to that tie's page.
        for item in getattr(error, "error_dict", {}).get(NON_FIELD_ERRORS, []):
            if item.code == "kind_already_stated":
                link = format_html(
                    '<a href="{}">{}</a>',
                    reverse("admin:partnerships_tie_change", args=[item.params["id"]]),
                    item.params["tie"],
                )
                # The message is the model's constant; both values are escaped.
                kind = conditional_escape(item.params["kind"])
                item.message = mark_safe(KIND_ALREADY_STATED % {"kind": kind, "tie": link})
                item.params = None
        super().add_error(field, error)


class ImportForm(forms.Form):
    # What another import's form (admin_members) changes: its command, its columns and the
    # example of a mapping.
    command = "import_ties"
    resolve_columns = staticmethod(resolve_mapping)
    mapping_example = (
        'city1=itemLabel,country1=countryLabel, or as a JSON object {"city1": "itemLabel"}'
    )

    file = forms.FileField(label="CSV or TSV file")
    source_slug = forms.SlugField(
        label="Source: citation key",
        required=False,
        max_length=100,
        help_text="Every imported tie cites this source, with its row number. Leave empty for "
        "the shared Wikipedia lists (wikipedia-twin-towns); give the key of an existing source "
        "to cite it, or a new key with a title below to create a dataset source.",
    )
    source_title = forms.CharField(label="Source: title", required=False, max_length=500)
    source_url = forms.URLField(
        label="Source: web address", required=False, max_length=500, assume_scheme="https"
    )
    kind = forms.ChoiceField(
        label="Kind of tie",
        choices=TieKind.choices,
        initial=TieKind.UNSPECIFIED,
        help_text="For rows that do not state one. A list that does not say sister or partner "
        "must not be read as saying either: keep it unspecified.",
    )
    mapping = forms.CharField(
        label="Column mapping",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Only for files not laid out as city1,country1,lat1,lng1,city2,country2,"
        "lat2,lng2: field=column pairs separated by commas (city1=itemLabel,country1=country)"
        ", or a JSON object. Fields: " + ", ".join(FIELDS) + ".",
    )
    skip_bad_rows = forms.BooleanField(
        label="Import the good rows only",
        required=False,
        help_text="Without it, one bad row stops the whole import and nothing is written.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = (
            "UTF-8, with or without a byte-order mark; the first row names the columns. "
            f"Up to 20 MB: larger files go through manage.py {self.command}."
        )

    def mapping_refused(self):
        return forms.ValidationError(
            "Write the mapping as field=column pairs separated by commas, e.g. "
            f"{self.mapping_example}."
        )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size / 1024 / 1024:.1f} MB; the admin takes files up to "
                f"{IMPORT_MAX_BYTES // 1024 // 1024} MB. Split it, or import it with "
                f"manage.py {self.command}."
            )
        data = upload.read()
        try:
            self.table = read_table(data, name=upload.name)
        except ImportFileError as error:
            raise forms.ValidationError(str(error)) from None
        # read_table has proved it UTF-8; kept as text so that it can wait in the session.
        self.text = data.decode("utf-8-sig")
        return upload

    def clean_mapping(self):
        text = self.cleaned_data["mapping"].strip()
        # parse_mapping also reads a mapping from a file named on the command line; a web
        # form must not open files on the server, so only inline mappings reach it.
        if text and (
            not (text.startswith("{") or "=" in text)
            or text.endswith(".json")
            or Path(text).exists()
        ):
            raise self.mapping_refused()
        try:
            return parse_mapping(text)
        except ImportFileError as error:
            raise forms.ValidationError(str(error)) from None

    def clean(self):
        data = super().clean()
        if hasattr(self, "table") and "mapping" in data:
            try:
                self.columns = self.resolve_columns(self.table.header, data["mapping"])
            except ImportFileError as error:
                # The library words it for the command line, where the option is --map.
                self.add_error("mapping", str(error).replace("--map ", ""))
        slug = data.get("source_slug")
        if not slug and (data.get("source_title") or data.get("source_url")):
            self.add_error(
                "source_slug",
                "Give the new source a citation key as well, e.g. national-register-2024: "
                "the key is how the atlas finds the source again.",
            )
        elif "source_slug" in data:
            try:
                self.source, self.source_is_new = source_for(data)
            except ImportFileError as error:
                self.add_error("source_slug", str(error))
        return data

    def pending(self, user):
        """What the confirmation needs to plan the same import again."""
        data = self.cleaned_data
        return {
            "token": uuid.uuid4().hex,
            "user": user.pk,
            "name": self.table.name,
            "text": self.text,
            "mapping": data["mapping"],
            "source": {
                "slug": data["source_slug"],
                "title": data["source_title"],
                "url": data["source_url"],
            },
            "kind": data.get("kind"),
            "skip_bad_rows": data["skip_bad_rows"],
        }


def source_for(fields):
    if fields.get("source_slug"):
        return dataset_source(
            fields["source_slug"], title=fields["source_title"], url=fields["source_url"]
        )
    return dataset_source()


class MergeForm(forms.Form):
    keep = forms.ModelChoiceField(City.objects.all())
    other = forms.ModelChoiceField(City.objects.all())

    def clean(self):
        data = super().clean()
        if data.get("keep") and data.get("keep") == data.get("other"):
            raise forms.ValidationError("A city cannot be merged into itself.")
        return data


class NotDuplicateForm(forms.Form):
    """A pair of the queue judged to be two places, and why."""

    city = forms.ModelChoiceField(City.objects.all())
    other = forms.ModelChoiceField(City.objects.all())
    reason = forms.CharField(
        label="Why are they two places?",
        max_length=1000,
        error_messages={
            "required": "Say why these are two places, in words another researcher will "
            "understand: for example “two different boroughs of London”."
        },
    )

    def clean(self):
        data = super().clean()
        city, other = data.get("city"), data.get("other")
        if city and other:
            if city == other:
                raise forms.ValidationError("A city cannot be a duplicate of itself.")
            # Recorded once per pair, the lower id first, whichever way it was posted.
            data["city"], data["other"] = sorted((city, other), key=lambda c: c.pk)
        return data

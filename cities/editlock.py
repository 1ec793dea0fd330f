"""Optimistic locking for the admin's change forms: no researcher silently erases another's
change.

A change form carries, hidden and signed, the record's values as they were when the form
was opened. On save, inside the admin's transaction and with the row locked, they are
compared with the values in the database now. If someone saved a change meanwhile, nothing
is saved: the form comes back with what the researcher typed, and an error naming who
changed what, from which value to which. Saving once more, having seen it, replaces their
values with the researcher's (the hidden values are renewed with the error).
"""

from django import forms
from django.core import signing
from django.core.exceptions import ValidationError
from django.utils.formats import date_format
from django.utils.timezone import localtime

FIELD = "_edit_version"
SALT = "cities.editlock"


def tracked_fields(model):
    """The columns a researcher's change is about: not the automatic time stamps."""
    return [
        field
        for field in model._meta.concrete_fields
        if not field.primary_key and not getattr(field, "auto_now", False)
    ]


def state_of(instance):
    return {
        field.attname: field.value_to_string(instance) for field in tracked_fields(type(instance))
    }


def stamp(instance):
    return signing.dumps(state_of(instance), salt=SALT, compress=True)


def _conflict_message(instance, opened, now):
    model = type(instance)
    labels = {field.attname: str(field.verbose_name) for field in tracked_fields(model)}
    changes = [
        f"{labels.get(name, name)}: “{opened.get(name) or '—'}” → “{value or '—'}”"
        for name, value in now.items()
        if opened.get(name) != value
    ]
    history = getattr(instance, "history", None)
    latest = history.order_by("-history_date").first() if history is not None else None
    who = "someone else"
    if latest is not None and latest.history_user_id:
        who = latest.history_user.get_username()
    when = ""
    if latest is not None:
        when = f" at {date_format(localtime(latest.history_date), 'j M Y, H:i')}"
    return (
        f"While you had this form open, {who} saved this {model._meta.verbose_name}{when}: "
        + "; ".join(changes)
        + ". Nothing of yours was saved. Your values are still in the form: save again to "
        "replace theirs with yours, or reload the page to start from theirs."
    )


class EditVersionForm(forms.ModelForm):
    """A change form that refuses to overwrite a change it did not see."""

    _edit_version = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields[FIELD].initial = stamp(self.instance)

    def clean(self):
        cleaned = super().clean()
        token = cleaned.get(FIELD)
        if self.instance.pk is None or not token:
            return cleaned
        try:
            opened = signing.loads(token, salt=SALT)
        except signing.BadSignature:
            raise ValidationError("This form was altered; reload the page.") from None
        model = type(self.instance)
        current = model._default_manager.select_for_update().filter(pk=self.instance.pk).first()
        if current is None:
            raise ValidationError(
                f"This {model._meta.verbose_name} was deleted while you had the form open."
            )
        now = state_of(current)
        if now != opened:
            # Shown once: the renewed values let a second save, made knowingly, go through.
            self.data = self.data.copy()
            self.data[self.add_prefix(FIELD)] = stamp(current)
            raise ValidationError(_conflict_message(current, opened, now), code="stale")
        return cleaned


_forms = {}


def with_edit_version(form_class):
    """`form_class` with the hidden edit version (one subclass per form class)."""
    if issubclass(form_class, EditVersionForm):
        return form_class
    if form_class not in _forms:
        _forms[form_class] = type(
            f"Versioned{form_class.__name__}", (EditVersionForm, form_class), {}
        )
    return _forms[form_class]

"""What management commands share about the person they act for."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError


def history_user(username):
    """The user the edit history credits with a command's writes: the one named `username`,
    or None when no name is given. An unknown name stops the command."""
    if not username:
        return None
    try:
        return get_user_model().objects.get_by_natural_key(username)
    except get_user_model().DoesNotExist:
        raise CommandError(f"There is no user “{username}”.") from None

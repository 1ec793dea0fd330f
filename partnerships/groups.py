"""The curator groups. Migrations call `sync_groups` again whenever models are added."""

from django.contrib.auth.management import create_permissions

CURATED_APPS = ("cities", "partnerships")
GROUP_ACTIONS = {
    "Researcher": ("view", "add", "change"),
    "Editor": ("view", "add", "change", "delete"),
}


def sync_groups(apps, schema_editor=None):
    """Give Researcher and Editor their permissions on every model of the curated apps."""
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, actions in GROUP_ACTIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        codenames = [
            f"{action}_{model._meta.model_name}"
            for label in CURATED_APPS
            for model in apps.get_app_config(label).get_models()
            for action in actions
        ]
        group.permissions.add(
            *Permission.objects.filter(
                content_type__app_label__in=CURATED_APPS, codename__in=codenames
            )
        )

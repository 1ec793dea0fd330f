import django.utils.timezone
from django.db import migrations, models


def first_version(apps, schema_editor):
    apps.get_model("partnerships", "AtlasVersion").objects.using(
        schema_editor.connection.alias
    ).get_or_create(id=1)


class Migration(migrations.Migration):
    dependencies = [
        ("partnerships", "0005_reader_corrections"),
    ]

    operations = [
        migrations.CreateModel(
            name="AtlasVersion",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(
                        default=1, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("counter", models.BigIntegerField(default=0)),
                ("changed_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={"verbose_name": "atlas version"},
        ),
        migrations.RunPython(first_version, migrations.RunPython.noop),
    ]

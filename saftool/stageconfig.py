"""A stage's config as command-line options and as argv: the one mapping between the two.

Each stage's settings are one pydantic model in the stage's own module (`gen.GenConfig`,
`mix.MixConfig`, `report.ReportConfig`): its fields, types, defaults and bounds are written there
once. The stage's Typer command takes each option's default and bounds from that model (`option`),
and the run plan renders a config into the command's argv (`to_argv`): that argv is what
`saftool run --dry-run` prints and what every executor runs, and parsed back by the command it
gives the same config.

A field's flag is `--` and its name with dashes (`n_harm`: `--n-harm`), unless the field names
another in its `json_schema_extra` (`{"flag": "--out"}`); a bool is a `--FLAG/--no-FLAG` switch.
Fields are rendered in the order the model declares them.
"""

from __future__ import annotations

from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo


def flag(model: type[BaseModel], name: str) -> str:
    """The command-line flag of the field `name` of `model`."""
    extra = model.model_fields[name].json_schema_extra
    if isinstance(extra, dict) and "flag" in extra:
        return str(extra["flag"])
    return "--" + name.replace("_", "-")


def _switch(field: FieldInfo) -> bool:
    return field.annotation is bool


def default(model: type[BaseModel], name: str) -> Any:
    """The default of the field `name` of `model`."""
    return model.model_fields[name].get_default(call_default_factory=True)


def option(model: type[BaseModel], name: str, *aliases: str, **kwargs: Any) -> Any:
    """A Typer option for the field `name` of `model`: its flag, its default and its bounds (`ge`,
    `le` as min, max) come from the field; `help` defaults to the field's description."""
    import typer

    field = model.model_fields[name]
    decl = flag(model, name)
    if _switch(field):
        decl = f"{decl}/--no-{decl.removeprefix('--')}"
    for bound in field.metadata:
        if isinstance(bound, annotated_types.Ge):
            kwargs.setdefault("min", bound.ge)
        elif isinstance(bound, annotated_types.Le):
            kwargs.setdefault("max", bound.le)
    kwargs.setdefault("help", field.description)
    return typer.Option(... if field.is_required() else default(model, name), decl, *aliases, **kwargs)


def to_argv(config: BaseModel) -> list[str]:
    """The options that give `config` back from its command.

    A field is rendered when the config was given it (`model_fields_set`), unless it is None or a
    switch left at its default: the command's own default gives the same value.
    """
    model = type(config)
    argv: list[str] = []
    for name, field in model.model_fields.items():
        value = getattr(config, name)
        if name not in config.model_fields_set or value is None:
            continue
        option_flag = flag(model, name)
        if _switch(field):
            if value != field.default:
                argv.append(option_flag if value else "--no-" + option_flag.removeprefix("--"))
        elif isinstance(value, (list, tuple)):
            argv += [option_flag, ",".join(map(str, value))]
        else:
            argv += [option_flag, str(value)]
    return argv


def section(model: type[BaseModel], *names: str, base: type[BaseModel], **descriptions: str) -> type[BaseModel]:
    """A model (subclassing `base`) holding the fields `names` of `model`, with their types, defaults
    and bounds, and a description of their own where `descriptions` gives one: a run config's table
    for a stage, built from the stage's config instead of restating its fields."""
    from pydantic import create_model

    fields: dict[str, Any] = {}
    for name in names:
        field = model.model_fields[name]
        if name in descriptions:
            field = FieldInfo.merge_field_infos(field, description=descriptions[name])
        fields[name] = (field.annotation, field)
    return create_model(f"{model.__name__}Section", __base__=base, **fields)

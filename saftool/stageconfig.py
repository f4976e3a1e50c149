"""A stage's config as command-line options and as argv: the one mapping between the two.

Each stage's settings are one pydantic model in the stage's own module (`gen.GenConfig`,
`mix.MixConfig`, `presets.TrainJob`, `infer.InferJob`, `report.ReportConfig`): its fields, types,
defaults, bounds and help are written there once. The stage's Typer command takes its options from
that model (`config_options` for all of them, or `option` one by one), and the run plan renders a
config into the command's argv (`to_argv`): that argv is what `saftool run --dry-run` prints and
what every executor runs, and parsed back by the command it gives the same config.

A field's flag is `--` and its name with dashes (`n_harm`: `--n-harm`; engines' options are spelt
so too, `registry.Registry.options`), unless the field names another in its `json_schema_extra`
(`{"flag": "-i"}`). A bool that defaults to true is a `--FLAG/--no-FLAG` switch; one that defaults
to false, a plain `--FLAG`. Fields are rendered in the order the model declares them.
"""

from __future__ import annotations

from collections.abc import Callable
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
    if _switch(field) and field.default is True:
        decl = f"{decl}/--no-{decl.removeprefix('--')}"
    for bound in field.metadata:
        if isinstance(bound, annotated_types.Ge):
            kwargs.setdefault("min", bound.ge)
        elif isinstance(bound, annotated_types.Le):
            kwargs.setdefault("max", bound.le)
    kwargs.setdefault("help", field.description)
    return typer.Option(... if field.is_required() else default(model, name), decl, *aliases, **kwargs)


def config_options(model: type[BaseModel], **settings: dict[str, Any]) -> Callable[[Callable], Callable]:
    """A decorator that makes each field of `model` an option of a Typer command (`option`: flag,
    default, bounds and help from the field; `settings[FIELD]` adds Typer settings, `aliases` more
    flags), after its context and before its own parameters, and hands the command one `model`
    built from them as its `config` parameter: the command's options are the config's fields."""
    import functools
    import inspect

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command)
        own = [p for p in signature.parameters.values() if p.name != "config"]
        fields = []
        for name, field in model.model_fields.items():
            extra = dict(settings.get(name, {}))
            default_ = option(model, name, *extra.pop("aliases", ()), **extra)
            fields.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default_, annotation=field.annotation))
        context, rest = own[:1], [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own[1:]]

        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            config = model(**{name: kwargs.pop(name) for name in model.model_fields})
            return command(*args, config=config, **kwargs)

        run.__signature__ = signature.replace(parameters=[*context, *fields, *rest])  # type: ignore[attr-defined]
        annotations = {k: v for k, v in command.__annotations__.items() if k != "config"}
        run.__annotations__ = {**annotations, **{f.name: f.annotation for f in fields}}
        return run

    return decorate


def to_argv(config: BaseModel, *names: str) -> list[str]:
    """The options that give `config` back from its command: its fields in declaration order, or
    those named in `names`, in that order.

    A field is rendered when the config was given it (`model_fields_set`), unless it is None or a
    switch left at its default: the command's own default gives the same value.
    """
    model = type(config)
    argv: list[str] = []
    for name in names or model.model_fields:
        field = model.model_fields[name]
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


def section(
    model: type[BaseModel], /, *names: str | tuple[type[BaseModel], str], base: type[BaseModel], **descriptions: str
) -> type[BaseModel]:
    """A model (subclassing `base`) holding the fields `names` of `model` (a `(other model, name)`
    pair takes another model's), in that order, with their types, defaults and bounds, and a
    description of their own where `descriptions` gives one: a run config's table for a stage, built
    from the stage's config instead of restating its fields."""
    from pydantic import create_model

    fields: dict[str, Any] = {}
    for entry in names:
        owner, name = entry if isinstance(entry, tuple) else (model, entry)
        field = owner.model_fields[name]
        if name in descriptions:
            field = FieldInfo.merge_field_infos(field, description=descriptions[name])
        fields[name] = (field.annotation, field)
    return create_model(f"{model.__name__}Section", __base__=base, **fields)

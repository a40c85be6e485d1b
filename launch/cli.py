"""One pattern for every command line of the project: an options dataclass with a docstring
under each field becomes the parser, and known bad input becomes one line on stderr and exit
code 2.

Each command (``launch.train``, ``evaluate``, ``watch``, ``play``, ``plot``, the tools in
``launch.tools`` and the scripts in ``benchmarks/``) declares its options as a dataclass::

    @dataclass
    class PlotOptions:
        runs: list[str] = field(default_factory=list, metadata=POSITIONAL)
        \"\"\"Run directories made by launch.train.\"\"\"
        smooth: int = 1
        \"\"\"Trailing mean over this many records.\"\"\"

and parses it with ``parse_options(PlotOptions, argv, prog=..., description=...)``: one
``--flag`` per field (``--smooth``), its help the field's docstring and default, its type
from the annotation (``bool``: ``--flag`` or ``--flag false``; ``Literal``: choices;
``dict``: a JSON object; ``list``: the flag repeated, or several positional values). A
dataclass rather than a third-party parser (tyro, as CleanRL uses) keeps the dependencies
to the standard library, and the same dataclasses are what the Python API takes.

``run_command(body)`` runs a command's body and turns the project's bad-input errors
(``BadInput`` and its subclasses: an unknown id, an invalid setting, a missing checkpoint)
into ``error: ...`` on stderr and exit code 2, so no command prints a traceback for them.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

EXIT_OK = 0
EXIT_BAD_INPUT = 2

MANY = {"nargs": "+"}
"""``field(default_factory=..., metadata=MANY)`` on a list: ``--flag A B C`` rather than
``--flag A --flag B``."""
POSITIONAL = {"positional": True}
"""``field(metadata=POSITIONAL)``: the field is a positional argument, not a ``--flag``."""
REQUIRED = {"required": True}
"""``field(default=..., metadata=REQUIRED)``: the command line must give the flag, though
the dataclass has a default for callers from Python."""

Options = TypeVar("Options")


class BadInput(ValueError):
    """Input that cannot run (a setting, an id, a file); the message says which and why.
    Commands that catch it exit with ``EXIT_BAD_INPUT``."""


def require_at_least(options: object, **minimums: int) -> None:
    """Raises ``BadInput`` naming the flag (``--num-envs`` for ``num_envs``) of the first
    option below its minimum: ``require_at_least(self, episodes=1, warmup_steps=0)``."""
    for name, minimum in minimums.items():
        value = getattr(options, name)
        if value < minimum:
            raise BadInput(f"--{name.replace('_', '-')} must be >= {minimum}, got {value}")


def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass (and of the dataclasses it
    extends), read from their source."""
    docs: dict[str, str] = {}
    for klass in reversed([klass for klass in cls.__mro__ if dataclasses.is_dataclass(klass)]):
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, following in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)):
                docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def parse_bool(text: str) -> bool:
    """``true/false``, ``yes/no``, ``on/off``, ``1/0``."""
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def parse_json_object(text: str) -> dict[str, Any]:
    """A JSON object (the ``--env-kwargs`` of every command); ValueError naming the problem."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"must be a JSON object, got {text!r} ({error})") from None
    if not isinstance(value, dict):
        raise ValueError(f"must be a JSON object, got {text!r}")
    return value


class _JsonObjectAction(argparse.Action):
    """Stores ``parse_json_object(value)``; a bad value is a usage error naming the flag."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        try:
            setattr(namespace, self.dest, parse_json_object(values))
        except ValueError as error:
            parser.error(f"{option_string or self.dest} {error}")


def _optional(parse: Any) -> Any:
    def parse_or_none(text: str) -> Any:
        return None if text.lower() in ("none", "null", "") else parse(text)

    parse_or_none.__name__ = getattr(parse, "__name__", "value")
    return parse_or_none


def field_default(item: dataclasses.Field) -> Any:
    """A dataclass field's default value (MISSING for a required field)."""
    if item.default is not dataclasses.MISSING:
        return item.default
    if item.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return item.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def add_dataclass_arguments(parser: argparse.ArgumentParser | Any, cls: type, *, suppress_defaults: bool = False,
                            extra_help: Callable[[str, Any], str] | None = None) -> None:
    """Adds one argument per field of the dataclass ``cls`` to ``parser`` (or an argument group).

    Args:
        suppress_defaults: leave flags that are not given out of the namespace (so the caller
            can tell them apart from flags given with their default value).
        extra_help: ``(field name, default) -> text`` appended to a field's help.
    """
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        if not item.init:
            continue
        hint = hints[item.name]
        default = field_default(item)
        required = default is dataclasses.MISSING or bool(item.metadata.get("required"))
        positional = bool(item.metadata.get("positional"))
        doc = docs.get(item.name, "")
        says_default = "default" in doc.lower()  # the docstring explains its default itself
        shown = "" if required or positional or says_default else f"default: {json.dumps(default)}"
        if extra_help is not None:
            shown = "; ".join(part for part in (shown, extra_help(item.name, default)) if part)
        help_text = doc + (f" ({shown})" if shown else "")
        kwargs: dict[str, Any] = {"help": help_text.replace("%", "%%")}
        if not positional:
            kwargs["dest"] = item.name
        if default is not dataclasses.MISSING:
            kwargs["default"] = argparse.SUPPRESS if suppress_defaults else default
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        optional = origin in (typing.Union, types.UnionType) and type(None) in args
        if optional:
            hint = next(arg for arg in args if arg is not type(None))
            origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is Literal:
            kwargs["choices"] = list(args)
        elif hint is bool:
            kwargs.update(type=parse_bool, nargs="?", const=True, metavar="BOOL")
        elif origin is dict:
            kwargs.update(action=_JsonObjectAction, metavar="JSON")
        elif origin is list:
            element = args[0] if args else str
            if positional:
                kwargs.update(nargs="+" if required or not field_default(item) else "*", type=element)
            elif "nargs" in item.metadata:  # --flag A B C
                kwargs.update(nargs=item.metadata["nargs"], type=element, metavar=item.name.upper().rstrip("S"))
            else:
                kwargs.update(action="append", type=element, metavar=item.name.upper().rstrip("S"))
                if not suppress_defaults:
                    kwargs["default"] = None  # filled with the field's default after parsing
        elif hint in (int, float, str):
            kwargs["type"] = _optional(hint) if optional else hint
        else:  # pragma: no cover - guards future fields
            raise TypeError(f"no command-line parser for field {item.name} of type {hint}")
        if "metavar" in item.metadata:
            kwargs["metavar"] = item.metadata["metavar"]
        if positional:
            parser.add_argument(item.name, **kwargs)
        else:
            parser.add_argument("--" + item.name.replace("_", "-"), required=required, **kwargs)


def options_parser(cls: type, prog: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """The parser of an options dataclass (see the module docstring)."""
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog)
    add_dataclass_arguments(parser, cls)
    return parser


def parse_options(cls: type[Options], argv: Sequence[str] | None, prog: str, description: str,
                  epilog: str | None = None) -> Options:
    """``cls`` filled from the command line. Malformed arguments exit through the parser
    (usage, the message, exit code 2); a value the dataclass rejects raises its ``BadInput``,
    which ``run_command`` reports."""
    parser = options_parser(cls, prog, description, epilog)
    values = vars(parser.parse_args(argv))
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        if item.init and values.get(item.name) is None and typing.get_origin(hints[item.name]) is list:
            values[item.name] = field_default(item)
    return cls(**values)


def cores_minus_one() -> int:
    """The CPU cores this process may use, less one for the learner (at least 1): the
    default actor count of the benchmarks."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - 1)


def first_paragraph(docstring: str | None) -> str:
    """A module docstring's first paragraph, for a parser's description."""
    return " ".join((docstring or "").split("\n\n")[0].split())


def bad_input_errors() -> tuple[type[Exception], ...]:
    """The exceptions that mean bad input from the user, whatever module raised them."""
    from agents.spaces import UnsupportedSpaceError
    from launch.impala.checkpoint import CheckpointError
    from launch.impala.env_factory import EnvConfigError

    return (BadInput, CheckpointError, EnvConfigError, UnsupportedSpaceError)


def run_command(body: Callable[[], int | None]) -> int:
    """Runs a command's body; bad input (``bad_input_errors``) becomes ``error: ...`` on
    stderr and ``EXIT_BAD_INPUT``. Returns the body's exit code (``EXIT_OK`` for None)."""
    try:
        code = body()
    except bad_input_errors() as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK if code is None else code

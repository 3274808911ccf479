"""Griffe extension for jgd's API reference (loaded by mkdocs.yml's ``extensions:``).

The docstrings in jgd/ stay as written for ``help()``; this adapts how griffe
reads them and the code around them, statically:

- ``Update:`` blocks (one equation per line, plain text) become code blocks;
  otherwise their lines merge into one paragraph and ``*`` turns into emphasis.
- ``Example:`` reads as ``Examples:``, the google parser's spelling, so the
  doctests render as code rather than as nested ``>>>`` quotes.
- ``adam = Adam`` (jgd's public lower-case names for its classes) becomes an
  alias, so ``jgd.adam`` renders as the class with its docstring.
- Classes made dataclasses by ``jgd.base.register`` get the ``__init__``
  signature the dataclass has (griffe knows only ``@dataclasses.dataclass``).
- A name in ``__all__`` served by a module ``__getattr__`` (``EmptyState``)
  becomes an alias to the class it returns at import time.
"""

from __future__ import annotations

import importlib
import re
import textwrap
from typing import Any

import griffe

_UPDATE = re.compile(r"^(?P<indent>[ \t]*)(?P<title>Update(?: \(.*\))?):[ \t]*$")
_EXAMPLE = re.compile(r"^([ \t]*)Example:[ \t]*$", re.MULTILINE)
_FIELD_CALLS = ("static_field", "field")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def fence_update_blocks(text: str) -> str:
    """Wrap the indented lines under each ``Update...:`` line in a ``text`` fence."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        title = _UPDATE.match(lines[i])
        out.append(lines[i])
        i += 1
        if not title:
            continue
        level = len(title["indent"])
        block: list[str] = []
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > level):
            block.append(lines[i])
            i += 1
        trailing: list[str] = []
        while block and not block[-1].strip():
            trailing.append(block.pop())
        if not block:
            out.extend(trailing)
            continue
        if title["title"] == "Update":  # a google section: griffe dedents its body
            pad = " " * _indent(block[0])
            out += [pad + "```text", *block, pad + "```"]
        else:  # "Update (...):" stays a paragraph: the fence follows it, unindented
            body = textwrap.dedent("\n".join(block)).split("\n")
            pad = title["indent"]
            out += ["", pad + "```text", *(pad + b for b in body), pad + "```"]
        out.extend(trailing)
    return "\n".join(out)


def _decorated_by_register(cls: griffe.Class) -> bool:
    return any(
        str(d.value).split("(")[0].split(".")[-1] == "register" for d in cls.decorators
    )


def _field_parameter(attr: griffe.Attribute) -> griffe.Parameter:
    default: Any = attr.value
    kind = griffe.ParameterKind.positional_or_keyword
    value = attr.value
    if isinstance(value, griffe.ExprCall) and str(value.function).split(".")[-1] in (
        _FIELD_CALLS
    ):
        default = None
        for arg in value.arguments:
            if isinstance(arg, griffe.ExprKeyword):
                if arg.name == "default":
                    default = arg.value
                elif arg.name == "kw_only" and str(arg.value) == "True":
                    kind = griffe.ParameterKind.keyword_only
            elif default is None:  # static_field(False): the default, positionally
                default = arg
    return griffe.Parameter(
        attr.name, annotation=attr.annotation, kind=kind, default=default
    )


def _set_register_init(cls: griffe.Class) -> None:
    try:
        lineage = [*reversed(cls.mro()), cls]
    except ValueError:
        lineage = [cls]
    if "__init__" in cls.members or not any(map(_decorated_by_register, lineage)):
        return
    params: dict[str, griffe.Parameter] = {}
    for klass in lineage:
        if not isinstance(klass, griffe.Class) or not _decorated_by_register(klass):
            continue
        for member in klass.members.values():
            if member.is_attribute and not member.is_alias and member.annotation:
                if "class-attribute" in member.labels and (
                    "instance-attribute" not in member.labels
                    and str(member.annotation).startswith("ClassVar")
                ):
                    continue
                params[member.name] = _field_parameter(member)
    kinds = griffe.ParameterKind
    ordered = [p for p in params.values() if p.kind is not kinds.keyword_only]
    ordered += [p for p in params.values() if p.kind is kinds.keyword_only]
    self_param = griffe.Parameter("self", kind=kinds.positional_or_keyword)
    init = griffe.Function(
        "__init__",
        lineno=cls.lineno,
        endlineno=cls.lineno,
        parent=cls,
        parameters=griffe.Parameters(self_param, *ordered),
        returns="None",
    )
    cls.set_member("__init__", init)


def _class_aliases(mod: griffe.Module) -> None:
    """``adam = Adam`` in the module that defines ``Adam``: an alias, not a value."""
    for name, member in list(mod.members.items()):
        if member.is_alias or not member.is_attribute:
            continue
        value = member.value
        if isinstance(value, griffe.ExprName) and value.name in mod.members:
            target = mod.members[value.name]
            if not target.is_alias and target.is_class:
                alias = griffe.Alias(
                    name,
                    target,
                    lineno=member.lineno,
                    endlineno=member.endlineno,
                    parent=mod,
                )
                mod.set_member(name, alias)


def _getattr_exports(mod: griffe.Module) -> None:
    """Names in ``__all__`` that only the module's ``__getattr__`` provides."""
    missing = [n for n in mod.exports or () if isinstance(n, str)]
    missing = [n for n in missing if n not in mod.members]
    if not missing or "__getattr__" not in mod.members:
        return
    runtime = importlib.import_module(mod.path)
    for name in missing:
        obj = getattr(runtime, name, None)
        path = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
        if path.startswith(mod.package.name + "."):
            mod.set_member(name, griffe.Alias(name, path, parent=mod))


def _walk(obj: griffe.Module | griffe.Class) -> None:
    if isinstance(obj, griffe.Module):
        _class_aliases(obj)
        _getattr_exports(obj)
    for member in list(obj.members.values()):
        if member.is_alias:
            continue
        if member.is_class:
            _set_register_init(member)
        if member.is_module or member.is_class:
            _walk(member)


class UpdateAsCode(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is None:
            return
        text = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
        if "Update" in text:
            text = fence_update_blocks(text)
        obj.docstring.value = text

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        _walk(pkg)

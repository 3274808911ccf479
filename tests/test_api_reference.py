"""The API reference (mkdocs.yml, docs/api/*.md) renders every public name.

Reads mkdocs.yml's nav and the ``::: identifier`` blocks of its pages the way
mkdocstrings does, without mkdocs (CI does not install the ``docs`` extra): a
name in a module's ``__all__`` is covered when a ``::: module`` block's
options (mkdocs.yml's, then the block's own) keep it, or when a block names
the object itself. ``mkdocs build --strict`` checks the rendering; this checks
that nothing public is left off when a name or module is added.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pathlib
import re
import textwrap
import types
from typing import Any

import pytest
import yaml  # PyYAML: a dependency of flax, in the test extra

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# The modules whose every public name the reference must show.
MODULES = [
    "jgd",
    "jgd.contrib",
    "jgd.schedules",
    "jgd.losses",
    "jgd.tree",
    "jgd.train",
    "jgd.checkpoint",
    "jgd.models",
    "jgd.lab",
]

# mkdocstrings-python's default ``filters``: hide _private, keep __special__.
_DEFAULT_FILTERS = ["!^_[^_]"]
_DIRECTIVE = re.compile(r"^::: *(\S+)[ \t]*$")


def _config() -> dict:
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text())


def _nav_pages(nav: Any) -> list[str]:
    """The page paths in a mkdocs nav (nested lists of {title: page or list})."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [p for item in nav for p in _nav_pages(item)]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_pages(value)]
    return []


def _global_options(config: dict) -> dict:
    for plugin in config.get("plugins", []):
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            handlers = (plugin["mkdocstrings"] or {}).get("handlers", {})
            return dict((handlers.get("python") or {}).get("options") or {})
    raise AssertionError("mkdocs.yml: no mkdocstrings plugin with python options")


def _directives(text: str) -> list[tuple[str, dict]]:
    """``(identifier, options)`` of each ``::: identifier`` block of a page."""
    lines = text.split("\n")
    found = []
    for i, line in enumerate(lines):
        match = _DIRECTIVE.match(line)
        if not match:
            continue
        block = []
        for following in lines[i + 1 :]:
            if following.strip() and not following.startswith((" ", "\t")):
                break
            block.append(following)
        body = yaml.safe_load(textwrap.dedent("\n".join(block))) or {}
        found.append((match[1], dict(body.get("options") or {})))
    return found


def _all_directives(config: dict) -> list[tuple[str, str, dict]]:
    """``(page, identifier, merged options)`` over the nav's pages."""
    defaults = _global_options(config)
    out = []
    for page in _nav_pages(config["nav"]):
        for identifier, options in _directives((DOCS / page).read_text()):
            out.append((page, identifier, {**defaults, **options}))
    return out


def _resolve(identifier: str) -> Any:
    """Import ``identifier`` (a module, or attributes under the longest module)."""
    parts = identifier.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(identifier)


def _keep(name: str, filters: list[str]) -> bool:
    """mkdocstrings' name filters: the last matching rule wins."""
    keep, rules = None, set()
    for rule in filters:
        exclude = rule.startswith("!")
        rules.add(exclude)
        if re.search(rule[exclude:], name):
            keep = not exclude
    return rules != {False} if keep is None else keep


def _module_block_renders(module: types.ModuleType, name: str, options: dict) -> bool:
    """Whether ``::: module`` with these options shows ``module.name``."""
    obj = getattr(module, name)
    if isinstance(obj, types.ModuleType):
        return False  # submodules: show_submodules, or their own page
    if hasattr(module, "__path__") and importlib.util.find_spec(
        f"{module.__name__}.{name}"
    ):
        return False  # griffe lists the submodule of that name instead
    members = options.get("members")
    if members is False or members == []:
        return False
    if isinstance(members, list):
        return name in members
    filters = options.get("filters", _DEFAULT_FILTERS)
    # "public": the names in __all__, which is where ``name`` comes from.
    kept = filters == "public" or _keep(name, list(filters))
    documented = inspect.isclass(obj) or inspect.isfunction(obj)
    return kept and (documented or bool(options.get("show_if_no_docstring")))


def uncovered(module: types.ModuleType, directives: list[tuple[str, str, dict]]):
    """The names of ``module.__all__`` that no block of the reference renders."""
    missing = []
    for name in module.__all__:
        obj = getattr(module, name)
        covered = False
        for _page, identifier, options in directives:
            if identifier == module.__name__:
                covered = _module_block_renders(module, name, options)
            elif isinstance(obj, types.ModuleType):
                covered = identifier == obj.__name__
            else:
                try:
                    covered = _resolve(identifier) is obj
                except (ImportError, AttributeError):
                    covered = False
            if covered:
                break
        if not covered:
            missing.append(name)
    return missing


def test_nav_pages_exist_and_every_api_page_is_in_the_nav():
    pages = _nav_pages(_config()["nav"])
    assert [p for p in pages if not (DOCS / p).is_file()] == []
    api = {f"api/{p.name}" for p in (DOCS / "api").glob("*.md")}
    assert sorted(api - set(pages)) == [], "docs/api pages missing from mkdocs.yml nav"


def test_every_block_points_at_something_that_imports():
    directives = _all_directives(_config())
    assert directives, "no ::: blocks found"
    broken = []
    for page, identifier, _ in directives:
        try:
            _resolve(identifier)
        except (ImportError, AttributeError) as e:
            broken.append(f"{page}: ::: {identifier} ({e!r})")
    assert broken == []


@pytest.mark.parametrize("name", MODULES)
def test_every_name_in_all_resolves(name):
    """``from module import *`` and ``module.<name>`` work for every listed name
    (the lazy ones of ``jgd`` included)."""
    module = importlib.import_module(name)
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == []
    assert len(set(module.__all__)) == len(module.__all__)


def test_each_module_has_a_page():
    identifiers = {ident for _, ident, _ in _all_directives(_config())}
    assert sorted(set(MODULES) - identifiers) == []


@pytest.mark.parametrize("name", MODULES)
def test_every_public_name_is_rendered(name):
    module = importlib.import_module(name)
    missing = uncovered(module, _all_directives(_config()))
    assert missing == [], (
        f"{name}.__all__ names no page of the API reference renders: {missing}; "
        f"add a '::: {name}' page to docs/api/ and mkdocs.yml's nav, or a block "
        "naming the object (see docs/api/train.md for jgd.train.fit)"
    )


def test_the_check_fails_on_a_name_left_off():
    directives = _all_directives(_config())
    # A new public module with no page: every name is missing.
    fresh = types.ModuleType("jgd.fresh")
    fresh.__all__ = ["nadam"]
    fresh.nadam = lambda: None
    assert uncovered(fresh, directives) == ["nadam"]
    # A new name in a module with a page, hidden by the block's options.
    losses = importlib.import_module("jgd.losses")
    hiding = [(p, i, {**o, "members": ["l2_loss"]}) for p, i, o in directives]
    assert "huber_loss" in uncovered(losses, hiding)
    hiding = [(p, i, {**o, "filters": ["!loss$"]}) for p, i, o in directives]
    assert "huber_loss" in uncovered(losses, hiding)
    # A name re-exported under the name of a submodule (jgd.train.fit) needs
    # its own block: griffe shows the submodule there.
    train = importlib.import_module("jgd.train")
    no_fit_block = [d for d in directives if d[1] != "jgd.train.fit.fit"]
    assert uncovered(train, no_fit_block) == ["fit"]

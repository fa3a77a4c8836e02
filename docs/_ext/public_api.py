"""The API reference follows the code: one directive renders every public name, one check fails the build.

``.. public-api:: MODULE`` (in an ``.rst`` page) renders the module docstring, then every public name of MODULE,
grouped into classes, functions and constants, with autodoc. The public names are ``MODULE.__all__``; a module
without ``__all__`` exposes the functions and classes it defines and the constants it documents with ``#:``.
A name added to ``__all__`` therefore appears in the reference without editing the docs.

After reading all pages, the build warns (an error under ``-W``) when

- a public name of a module in ``public_api_modules`` has no docstring (a class or function without its own
  ``__doc__``, a constant without a ``#:`` comment where it is defined), unless listed in ``public_api_exempt``;
- a public name has no rendered entry in the Python domain (the page or the directive is missing);
- a submodule of a package in ``public_api_packages`` is neither in ``public_api_modules`` nor in
  ``public_api_skip`` (a new adapter must be documented, or declared not public).

A class or function that a module re-exports from another documented module (``essl_aug.RandomRotation90``, defined
in ``essl_aug.transforms.rotation90``) gets a short entry linking to its definition, documented once there; the
re-exported name is an alias in the Python domain, so a short reference (``Params`` in a signature) resolves to the
definition.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from collections.abc import Collection, Iterator
from types import ModuleType
from typing import Any

from sphinx.application import Sphinx
from sphinx.domains.python import PythonDomain
from sphinx.environment import BuildEnvironment
from sphinx.errors import PycodeError
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.parsing import nested_parse_to_nodes

logger = logging.getLogger(__name__)

#: Longest ``repr`` of a constant shown as its value in the reference; longer ones show only their docstring.
MAX_VALUE_REPR = 60
#: Third-party hooks that a class may override without a docstring and that the reference leaves out.
HIDDEN_OVERRIDES = frozenset({"extra_repr"})


def _module_attr_docs(modname: str) -> dict[str, list[str]]:
    """The ``#:`` (and string-after) attribute docs of a module's top level, by attribute name."""
    try:
        analyzer = ModuleAnalyzer.for_module(modname)
        return {name: lines for (ns, name), lines in analyzer.find_attr_docs().items() if ns == ""}
    except PycodeError:
        return {}


def constant_doc(module: ModuleType, name: str) -> list[str]:
    """The doc comment of constant ``module.name``, looked up where it is defined.

    A package re-exporting a constant (``essl_aug.PERMUTATIONS`` from ``essl_aug.jigsaw``) carries no comment
    itself, so every loaded submodule of the package holding the very same object is searched.
    """
    obj = getattr(module, name)
    package = module.__name__.split(".")[0]
    others = sorted(m for m in list(sys.modules) if m.startswith(f"{package}.") and m != module.__name__)
    candidates = [module.__name__, *others]
    for modname in candidates:
        owner = sys.modules.get(modname)
        if owner is None or getattr(owner, name, _MISSING) is not obj:
            continue
        lines = _module_attr_docs(modname).get(name)
        if lines and any(line.strip() for line in lines):
            return lines
    return []


_MISSING = object()


def _is_routine_or_class(obj: Any) -> bool:
    return inspect.isclass(obj) or inspect.isroutine(obj)


def public_names(module: ModuleType) -> list[str]:
    """``module.__all__``; without one, the functions and classes it defines and the constants it documents."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    documented = _module_attr_docs(module.__name__)
    found = []
    for name, obj in vars(module).items():
        if name.startswith("_"):
            continue
        if _is_routine_or_class(obj):
            if getattr(obj, "__module__", None) == module.__name__:
                found.append(name)
        elif name in documented and not inspect.ismodule(obj):
            found.append(name)
    return found


def defined_in(module: ModuleType, name: str, documented: Collection[str]) -> str | None:
    """The module among ``documented`` that defines the class or function ``module.name`` under that name (None: it
    is ``module``'s own, a constant, or defined in an undocumented module)."""
    obj = getattr(module, name)
    home = getattr(obj, "__module__", None)
    if not _is_routine_or_class(obj) or home == module.__name__ or home not in documented:
        return None
    return home if getattr(sys.modules.get(home), name, None) is obj else None


def kind(obj: Any) -> str:
    """``"class"``, ``"function"`` or ``"data"``: the autodoc directive that renders ``obj``."""
    if inspect.isclass(obj):
        return "class"
    if inspect.isroutine(obj):
        return "function"
    return "data"


def has_docstring(module: ModuleType, name: str) -> bool:
    """True when the public name ``module.name`` carries its own documentation."""
    obj = getattr(module, name)
    if kind(obj) == "data":
        return bool(constant_doc(module, name))
    own = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    return isinstance(own, str) and bool(own.strip())


def missing_docstrings(module: ModuleType, exempt: Collection[str] = ()) -> list[str]:
    """Full names of the public names of ``module`` without documentation (``exempt`` full names excepted)."""
    return [
        f"{module.__name__}.{name}"
        for name in public_names(module)
        if f"{module.__name__}.{name}" not in exempt and not has_docstring(module, name)
    ]


def missing_entries(module: ModuleType, documented: set[str]) -> list[str]:
    """Full names of the public names of ``module`` absent from ``documented`` (the rendered full names)."""
    return [f"{module.__name__}.{n}" for n in public_names(module) if f"{module.__name__}.{n}" not in documented]


def undeclared_submodules(package: str, declared: set[str]) -> list[str]:
    """Non-private submodules of ``package`` that are in neither ``declared`` set (documented or skipped)."""
    pkg = importlib.import_module(package)
    subs = (f"{package}.{info.name}" for info in pkgutil.iter_modules(pkg.__path__) if not info.name.startswith("_"))
    return sorted(m for m in subs if m not in declared)


class PublicApi(SphinxDirective):
    """``.. public-api:: MODULE``: the module docstring and an autodoc entry for each public name."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[Any]:
        modname = self.arguments[0]
        try:
            module = importlib.import_module(modname)
        except Exception as err:  # an import error of the documented code, reported where the page asks for it
            logger.warning("public API: cannot import %s: %r", modname, err, location=self.get_location())
            return []
        groups: dict[str, list[str]] = {"class": [], "function": [], "data": []}
        for name in public_names(module):
            groups[kind(getattr(module, name))].append(name)
        elsewhere = set(self.config.public_api_modules) - {modname}
        lines = [f".. automodule:: {modname}", ""]
        titles = {"class": "Classes", "function": "Functions", "data": "Constants"}
        for what, names in groups.items():
            if not names:
                continue
            lines += [f".. rubric:: {titles[what]}", ""]
            for name in names:
                home = defined_in(module, name, elsewhere)
                lines += list(self._alias(module, name, what, home) if home else self._entry(module, name, what))
        return nested_parse_to_nodes(
            self.state, "\n".join(lines), source=f"<public-api {modname}>", allow_section_headings=False
        )

    @staticmethod
    def _alias(module: ModuleType, name: str, what: str, home: str) -> Iterator[str]:
        role = "class" if what == "class" else "func"
        yield from (
            f".. py:{what}:: {name}",
            f"   :module: {module.__name__}",
            "",
            f"   Re-exported from :mod:`{home}`: :{role}:`{home}.{name}`.",
            "",
        )

    @staticmethod
    def _entry(module: ModuleType, name: str, what: str) -> Iterator[str]:
        full = f"{module.__name__}.{name}"
        if what == "class":
            yield from (f".. autoclass:: {full}", "   :members:", "")
            return
        if what == "function":
            yield from (f".. autofunction:: {full}", "")
            return
        yield f".. autodata:: {full}"
        if len(repr(getattr(module, name))) > MAX_VALUE_REPR:
            yield "   :no-value:"
        yield ""


def _constant_docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """Give a constant the ``#:`` comment written where it is defined, never its type's docstring.

    autodoc finds no comment for a re-exported constant (``essl_aug.PERMUTATIONS``) and falls back to the
    docstring of the value's type (``tuple``, ``str``).
    """
    if what != "data" or "." not in name:
        return
    modname, attr = name.rsplit(".", 1)
    module = sys.modules.get(modname)
    if module is None or getattr(module, attr, _MISSING) is not obj:
        return
    type_doc = _words(inspect.getdoc(type(obj)) or "")
    if lines and _words("\n".join(lines)) not in ("", type_doc):
        return
    lines[:] = [*constant_doc(module, attr), ""]


def _words(text: str) -> str:
    return " ".join(text.split())


def _inherited_doc_owner(obj: Any, name: str) -> str | None:
    """Module of the class whose docstring an undocumented method ``obj`` would inherit (None: not found)."""
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    owner: Any = module
    for part in getattr(obj, "__qualname__", "").split(".")[:-1]:
        owner = getattr(owner, part, None)
    if not inspect.isclass(owner):
        return None
    for base in owner.__mro__[1:]:
        doc = getattr(base.__dict__.get(name), "__doc__", None)
        if isinstance(doc, str) and doc.strip():
            return base.__module__
    return None


def _foreign_inherited(obj: Any, name: str) -> bool:
    """True for an undocumented override whose inherited docstring belongs to another library (``nn.Module``)."""
    if not inspect.isroutine(obj) or getattr(obj, "__doc__", None) is not None:
        return False
    owner = _inherited_doc_owner(obj, name)
    return owner is not None and owner.split(".")[0] != "essl_aug"


def _skip_member(app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
    """Skip a named tuple's field aliases ("Alias for field number 0": the class's ``Attributes`` section
    documents the fields) and undocumented overrides of third-party hooks in :data:`HIDDEN_OVERRIDES`."""
    if skip or what != "class":
        return None
    if type(obj).__name__ == "_tuplegetter":
        return True
    if name in HIDDEN_OVERRIDES and _foreign_inherited(obj, name):
        return True
    return None


def _foreign_docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """Render an undocumented ``forward`` by its signature alone, not with ``nn.Module.forward``'s text."""
    if what == "method" and _foreign_inherited(obj, name.rsplit(".", 1)[-1]):
        lines[:] = []


def check_public_api(app: Sphinx, env: BuildEnvironment) -> None:
    """Warn about every public name without a docstring or a rendered entry, and undeclared submodules."""
    modules: list[str] = list(app.config.public_api_modules)
    exempt = set(app.config.public_api_exempt)
    domain = env.get_domain("py")
    assert isinstance(domain, PythonDomain)
    documented = set(domain.objects)
    declared = set(modules) | set(app.config.public_api_skip)
    for package in app.config.public_api_packages:
        for modname in undeclared_submodules(package, declared):
            logger.warning(
                "public API: module %s is not documented; add it to public_api_modules in docs/conf.py and a "
                "`.. public-api:: %s` page, or to public_api_skip if it is not public",
                modname,
                modname,
                type="public_api",
            )
    for modname in modules:
        try:
            module = importlib.import_module(modname)
        except Exception as err:
            logger.warning("public API: cannot import %s: %r", modname, err, type="public_api")
            continue
        for name in public_names(module):
            entry = domain.objects.get(f"{modname}.{name}")
            if entry is not None and defined_in(module, name, set(modules) - {modname}):
                domain.objects[f"{modname}.{name}"] = entry._replace(aliased=True)  # the definition wins a lookup
        for full in missing_docstrings(module, exempt):
            logger.warning("public API: %s has no docstring", full, type="public_api")
        for full in missing_entries(module, documented):
            logger.warning(
                "public API: %s has no rendered entry (add `.. public-api:: %s` to a page)",
                full,
                modname,
                type="public_api",
            )


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.autodoc")
    app.add_config_value("public_api_modules", [], "env", list)
    app.add_config_value("public_api_packages", [], "env", list)
    app.add_config_value("public_api_skip", [], "env", list)
    app.add_config_value("public_api_exempt", [], "env", list)
    app.add_directive("public-api", PublicApi)
    app.connect("autodoc-process-docstring", _constant_docstring)
    app.connect("autodoc-process-docstring", _foreign_docstring)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("env-check-consistency", check_public_api)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

"""``ivnext`` scope registries, children of mmaction2's (and of MMEngine's where mmaction2 has none).

ivnext registers its modules in mmaction2's registries. Configs inherited with ``_base_ = 'ivnext::...'`` get
MMEngine's ``_scope_='ivnext'``, and MMEngine then builds them from the registries of scope ``ivnext``: these
children, which hold nothing themselves and find every module (MMEngine's, mmaction2's and ivnext's) in their
ancestors.

MMEngine's ``Registry.get`` imports the ``locations`` of the registry it is called on, and only then looks a
name up in the ancestors' tables: it never imports the ancestors' locations. mmaction2 registers most of its
runtime modules that way, on first use (``ActionVisualizer`` in ``mmaction.visualization``, its hooks, loops
and optimizer constructors in ``mmaction.engine``, its metrics in ``mmaction.evaluation``), so each child here
imports the locations of all its ancestors before its own (:class:`ScopeRegistry`).
"""
import importlib
import logging
from typing import List

from mmaction import registry as _mmaction_registry
from mmengine.logging import print_log
from mmengine.registry import Registry
from mmengine.registry import root as _mmengine_root

SCOPE = 'ivnext'


def _import_location(location: str, registry: Registry) -> None:
    """Import one ``locations`` entry of ``registry``; skip one that names no module.

    mmaction2 1.2.0 lists ``mmaction.mmengine`` for its function registry, a module it does not ship; a missing
    module is skipped (logged at debug level), any error raised while importing an existing module propagates.
    """
    try:
        importlib.import_module(location)
    except ModuleNotFoundError as error:
        if error.name is None or not (location == error.name or location.startswith(error.name + '.')):
            raise
        print_log(f'The {registry.scope} {registry.name!r} registry lists the location {location!r}, which is not '
                  'an importable module; skipped.', logger='current', level=logging.DEBUG)


class ScopeRegistry(Registry):
    """A registry of scope ``ivnext`` that finds every module its ancestors find.

    Before its first look-up it imports the ``locations`` of every ancestor (mmaction2's lazily imported
    modules), then its own, so a name resolves the same whether or not the ancestor's scope has been used
    first in the process.
    """

    def import_from_location(self) -> None:
        """Import the ancestors' locations, root first, then this registry's own."""
        if not self._imported:
            for ancestor in reversed(self._ancestors()):
                if not ancestor._imported:
                    for location in ancestor._locations:
                        _import_location(location, ancestor)
        super().import_from_location()

    def _ancestors(self) -> List[Registry]:
        """The parent, its parent, ... up to the root."""
        ancestors = []
        parent = self.parent
        while parent is not None:
            ancestors.append(parent)
            parent = parent.parent
        return ancestors


def _scope_children() -> dict:
    """One ``ivnext`` child of each mmaction2 registry, and of each MMEngine root registry that mmaction2 has no
    child of (``STRATEGIES``); keyed by the mmaction2 name, else the MMEngine name."""
    children = {}
    for name, parent in sorted(vars(_mmaction_registry).items()):
        if isinstance(parent, Registry) and name.isupper() and parent.scope == 'mmaction':
            children[name] = ScopeRegistry(parent.name, parent=parent, scope=SCOPE, locations=[SCOPE])
    for name, root in sorted(vars(_mmengine_root).items()):
        if (isinstance(root, Registry) and name.isupper() and name not in children
                and not {'mmaction', SCOPE} & set(root._children)):
            children[name] = ScopeRegistry(root.name, parent=root, scope=SCOPE, locations=[SCOPE])
    return children


globals().update(_scope_children())
__all__ = sorted(name for name, value in globals().items() if isinstance(value, ScopeRegistry))

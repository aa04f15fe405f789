"""``ivnext`` scope registries, children of mmaction2's.

ivnext registers its modules in mmaction2's registries. Configs inherited with ``_base_ = 'ivnext::...'`` get
MMEngine's ``_scope_='ivnext'``, and MMEngine then builds them from the registries of scope ``ivnext``: these
children, which hold nothing themselves and find every module (mmaction2's and ivnext's) in their parent.
"""
from mmaction import registry as _mmaction_registry
from mmengine.registry import Registry

__all__ = []
for _name, _parent in sorted(vars(_mmaction_registry).items()):
    if isinstance(_parent, Registry) and _name.isupper() and _parent.scope == 'mmaction':
        globals()[_name] = Registry(_parent.name, parent=_parent, scope='ivnext', locations=['ivnext'])
        __all__.append(_name)

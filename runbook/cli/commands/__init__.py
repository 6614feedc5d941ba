"""Extra CLI commands, one module per concern; each registers itself on the apps in
runbook.cli (imported at the end of runbook.cli)."""
import importlib
import pkgutil

for _mod in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_mod.name}")

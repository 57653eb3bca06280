"""The house's shape, checked: rooms import only the rooms below them, no import
circle, no private name imported from another room (docs/architecture.md)."""

import importlib.util
import os

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "xai_callback")

# Rooms from the top down; a room imports only rooms on its own line or below.
LAYERS = [
    {"cli", "commands", "placement", "inputs"},  # the command line; shims of documented import paths
    {"callbacks"},
    {"batch", "serve"},
    {"export"},
    {"explain"},
    {"contract"},
    {"split"},
    {"backends"},
    {"publish"},
    {"spec"},
    {"signatures"},
    {"errors", "arguments", "names", "imports", "_keras", "_version"},
]
LEVEL = {room: level for level, rooms in enumerate(LAYERS) for room in rooms}


def _house_metrics():
    """benchmarks/house_metrics.py: the one reader of the package's imports."""
    path = os.path.join(os.path.dirname(PACKAGE_DIR), "benchmarks", "house_metrics.py")
    spec = importlib.util.spec_from_file_location("house_metrics", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HOUSE = _house_metrics()
MODULES = HOUSE.modules(PACKAGE_DIR)


def _room(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _imports(path):
    return HOUSE.imports(path, MODULES)


def test_rooms_import_only_rooms_below_them():
    unknown = sorted({_room(m) for m in MODULES} - set(LEVEL) - {None})
    assert not unknown, f"rooms missing from LAYERS (and docs/architecture.md): {unknown}"
    arrows_up = []
    for module, path in sorted(MODULES.items()):
        room = _room(module)
        if room is None:
            continue  # xai_callback/__init__.py gathers the public names
        for imported, _, line, _ in _imports(path):
            target = _room(imported)
            if target is None:
                arrows_up.append(f"{module}:{line} imports the package root {imported}")
            elif LEVEL[target] < LEVEL[room]:
                arrows_up.append(f"{module}:{line} ({room}) imports {imported} ({target}, a room above)")
    assert not arrows_up, "\n".join(arrows_up)


def test_no_private_name_is_imported_from_another_room():
    private = []
    for module, path in sorted(MODULES.items()):
        for imported, names, line, _ in _imports(path):
            if _room(imported) == _room(module):
                continue
            hidden = [n for n in names if n.startswith("_") and not n.startswith("__")] + (
                [imported] if any(p.startswith("_") and p not in ("_keras", "_version") for p in imported.split("."))
                else [])
            if hidden:
                private.append(f"{module}:{line} imports {hidden} from {imported}")
    assert not private, "\n".join(private)


def test_no_import_circle():
    # Module-level and function-level imports alike: a circle hidden in a function is still one.
    graph = {module: {imported for imported, _, _, _ in _imports(path) if imported in MODULES}
             for module, path in MODULES.items()}
    circles = HOUSE.circles(graph)
    assert not circles, "\n".join(" <-> ".join(c) for c in circles)

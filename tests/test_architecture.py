"""The house's shape, checked: rooms import only the rooms below them, no import
circle, no private name imported from another room (docs/architecture.md)."""

import ast
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


def _modules():
    """`{dotted module name: path}` of the package (the package __init__ aside)."""
    found = {}
    for folder, _, files in os.walk(PACKAGE_DIR):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                relative = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-3].replace(os.sep, ".")
                found[relative.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _room(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _imports(path):
    """`[(imported module, [names], line, at module level)]` of one file."""
    tree = ast.parse(open(path).read(), path)
    top = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("xai_callback"):
            names = [a.name for a in node.names]
            # `from xai_callback.x import y` may import the module x.y.
            modules = [f"{node.module}.{n}" if f"{node.module}.{n}" in MODULES else node.module for n in names]
            for module, name in zip(modules, names):
                out.append((module, [] if module.endswith(f".{name}") else [name], node.lineno, id(node) in top))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("xai_callback"):
                    out.append((alias.name, [], node.lineno, id(node) in top))
    return out


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
    graph = {module: {imported for imported, _, _, _ in _imports(path) if imported in MODULES}
             for module, path in MODULES.items()}
    # Module-level and function-level imports alike: a circle hidden in a function is still one.
    circles, state = [], {}

    def visit(module, stack):
        state[module] = "open"
        stack.append(module)
        for nxt in sorted(graph.get(module, ())):
            if _is_package_of(nxt, module):
                continue  # a module importing its own package's __init__ names
            if state.get(nxt) == "open":
                circles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state and module != "xai_callback":
            visit(module, [])
    circles = [c for c in circles if not c.startswith("xai_callback ->")]
    assert not circles, "\n".join(circles)


def _is_package_of(package, module):
    return module.startswith(package + ".") and package in MODULES and MODULES[package].endswith("__init__.py")

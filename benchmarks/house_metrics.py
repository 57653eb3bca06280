"""Shape of the package: module count and sizes, imports inside functions, import circles.

Reads the source only (nothing is imported), so it runs on any checkout:

    python benchmarks/house_metrics.py                 # this checkout
    python benchmarks/house_metrics.py --repo /tmp/old # another one, e.g. `git worktree add /tmp/old REV`

Import circles count module-level and function-level imports alike (a circle
hidden inside a function is still one); a module importing its own package's
`__init__` is not a circle.
"""

import argparse
import ast
import os


def modules(package_dir):
    found = {}
    for folder, _, files in os.walk(package_dir):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path, os.path.dirname(package_dir))[:-3].replace(os.sep, ".")
                found[dotted.removesuffix(".__init__")] = path
    return found


def imports(path, known):
    """`[(module, [names], line, at module level)]` of the package's modules one file imports.

    `from xai_callback.x import y` counts as importing the module `x.y` when
    that is a module (names then empty), else `x` with the name `y`.
    """
    tree = ast.parse(open(path).read(), path)
    top = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("xai_callback"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                if sub in known:
                    out.append((sub, [], node.lineno, id(node) in top))
                else:
                    out.append((node.module, [alias.name], node.lineno, id(node) in top))
        elif isinstance(node, ast.Import):
            out.extend((a.name, [], node.lineno, id(node) in top)
                       for a in node.names if a.name.startswith("xai_callback"))
    return out


def circles(graph):
    found, state = set(), {}

    def visit(module, stack):
        state[module] = "open"
        stack.append(module)
        for nxt in sorted(graph.get(module, ())):
            if module.startswith(nxt + "."):
                continue  # its own package's __init__
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):]
                found.add(tuple(sorted(cycle)))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state and module != "xai_callback":
            visit(module, [])
    return sorted(c for c in found if "xai_callback" not in c)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = parser.parse_args()
    package_dir = os.path.join(args.repo, "xai_callback")
    known = modules(package_dir)
    lines = {m: sum(1 for _ in open(p)) for m, p in known.items()}
    graph, inner = {}, 0
    for module, path in known.items():
        found = imports(path, known)
        graph[module] = {m for m, _, _, _ in found if m in known}
        inner += sum(1 for _, _, _, top in found if not top)
    longest = sorted(lines.items(), key=lambda kv: -kv[1])[:3]
    root = [m for m in known if m.count(".") == 1 and not known[m].endswith("__init__.py")]
    print(f"modules: {len(known)} ({len(root)} at the package root)")
    print("longest: " + ", ".join(f"{m} {n}" for m, n in longest))
    print(f"modules over 450 lines: {sum(1 for n in lines.values() if n > 450)}")
    print(f"imports of the package inside functions: {inner}")
    cycles = circles(graph)
    print(f"import circles: {len(cycles)}" + "".join(f"\n  {' <-> '.join(c)}" for c in cycles))


if __name__ == "__main__":
    main()

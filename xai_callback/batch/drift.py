"""Attribution drift: how the importance of each feature moved between two importance files.

As Vertex Model Monitoring's feature attribution drift: two importance files
(two versions of a model on the same data, or one model on training vs
serving data) are compared feature by feature on their **share** of the total
mean |attribution| (shares are comparable when the outputs' scale changed).
A feature drifts when its share moved by more than `threshold` (absolute,
0..1). The report also gives the total variation distance between the two
share distributions (half the sum of the absolute share changes), and for
token features the tokens whose mean |attribution| moved most.
"""

DEFAULT_THRESHOLD = 0.1
TOP_TOKENS = 10


def compare_importance(before, after, threshold=DEFAULT_THRESHOLD):
    """Per-feature change between two importance dicts (as `parse_importance` returns them).

    Example:

    ```python
    report = compare_importance(parse_importance(a_text), parse_importance(b_text), threshold=0.05)
    report["drifted"]   # features whose share moved by more than 0.05, largest move first
    ```

    Args:
        before, after: importance dicts (the older first).
        threshold: the largest share change (0..1) that is not drift.

    Returns:
        `{"threshold", "maxShareChange", "totalVariation", "drifted": [names],
        "features": {name: {"shareBefore", "shareAfter", "shareChange",
        "meanAbsBefore", "meanAbsAfter", "ratio"}}, "tokens": {feature: [...]}}`,
        features ordered by |share change|, largest first.

    Raises:
        ValueError: `threshold` is not a number in [0, 1].
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be a share change between 0 and 1; received {threshold!r}.")
    a, b = before["features"], after["features"]
    rows = {}
    for name in list(a) + [n for n in b if n not in a]:
        share_a, share_b = _get(a, name, "share"), _get(b, name, "share")
        mean_a, mean_b = _get(a, name, "meanAbsAttribution"), _get(b, name, "meanAbsAttribution")
        rows[name] = {
            "shareBefore": share_a, "shareAfter": share_b, "shareChange": share_b - share_a,
            "meanAbsBefore": mean_a, "meanAbsAfter": mean_b,
            "ratio": mean_b / mean_a if mean_a > 0 else None,
            "present": "both" if name in a and name in b else ("before" if name in a else "after"),
        }
    ordered = dict(sorted(rows.items(), key=lambda item: (-abs(item[1]["shareChange"]), item[0])))
    changes = [abs(row["shareChange"]) for row in ordered.values()]
    report = {
        "threshold": threshold,
        "maxShareChange": max(changes, default=0.0),
        "totalVariation": sum(changes) / 2,
        "drifted": [name for name, row in ordered.items() if abs(row["shareChange"]) > threshold],
        "features": ordered,
    }
    tokens = _token_changes(before.get("tokens") or {}, after.get("tokens") or {})
    if tokens:
        report["tokens"] = tokens
    return report


def _token_changes(a, b):
    """`{feature: [{"token", "meanAbsBefore", "meanAbsAfter", "change"}]}`, the largest moves."""
    out = {}
    for feature in sorted(set(a) & set(b)):
        before, after = a[feature], b[feature]
        moves = []
        for token in set(before) | set(after):
            x = before.get(token, {}).get("meanAbsAttribution", 0.0)
            y = after.get(token, {}).get("meanAbsAttribution", 0.0)
            moves.append({"token": token, "meanAbsBefore": x, "meanAbsAfter": y, "change": y - x})
        moves.sort(key=lambda m: (-abs(m["change"]), m["token"]))
        out[feature] = moves[:TOP_TOKENS]
    return out


def _get(features, name, field):
    return float(features.get(name, {}).get(field, 0.0))


def format_report(report, top=10):
    """The report as lines of text for a terminal."""
    lines = [f"{'feature':<24} {'share before':>12} {'share after':>12} {'change':>8}"]
    for name, row in list(report["features"].items())[:top]:
        mark = "  DRIFT" if name in report["drifted"] else ""
        lines.append(f"{name[:24]:<24} {row['shareBefore']:>12.4f} {row['shareAfter']:>12.4f} "
                     f"{row['shareChange']:>+8.4f}{mark}")
    lines.append(f"largest share change {report['maxShareChange']:.4f} (threshold "
                 f"{report['threshold']}), total variation {report['totalVariation']:.4f}; "
                 + (f"drifted: {', '.join(report['drifted'])}" if report["drifted"] else "no drift"))
    for feature, moves in (report.get("tokens") or {}).items():
        shown = ", ".join(f"{m['token']!r} {m['change']:+.3g}" for m in moves[:5])
        lines.append(f"tokens of {feature} that moved most: {shown}")
    return lines

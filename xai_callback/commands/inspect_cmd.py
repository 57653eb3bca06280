"""`xai-callback inspect DIR`: signatures, metadata, parameters and provenance."""

import json
import sys

from xai_callback.commands.validate_cmd import EXIT_OK, EXIT_USAGE


def register(subparsers):
    parser = subparsers.add_parser(
        "inspect",
        help="show an export's signatures, explanation metadata and provenance",
        description="Prints the signatures (keys, dtypes, shapes), the Vertex explanation "
                    "metadata and parameters, the legacy metadata, the provenance and the "
                    "stored sample of an export.",
    )
    parser.add_argument("export_dir", help="SavedModel directory (local, gs://, ...)")
    parser.set_defaults(func=run)
    return parser


def run(args):
    import tensorflow as tf  # slow import: only when run

    from xai_callback.contract.validation import require_saved_model

    try:
        require_saved_model(args.export_dir)
    except FileNotFoundError as e:
        print(f"xai-callback inspect: {e}", file=sys.stderr)
        return EXIT_USAGE
    loaded = tf.saved_model.load(args.export_dir)
    print(describe_export(args.export_dir, loaded.signatures))
    return EXIT_OK


def describe_export(export_dir, signatures):
    """The readable listing `inspect` prints."""
    from xai_callback import names
    from xai_callback.publish import storage
    from xai_callback.signatures import specs as tensor_specs

    explained = tensor_specs.explained_signature_name(signatures)
    lines = [f"Export: {export_dir}", f"Signatures (the service explains '{explained}'):"]
    for name in sorted(signatures.keys()):
        inputs, outputs = tensor_specs.signature_io(signatures[name])
        lines.append(f"  {name}")
        for label, specs in (("inputs", inputs), ("outputs", outputs)):
            lines.append(f"    {label}:")
            width = max((len(k) for k in specs), default=0)
            lines += [f"      {k:<{width}}  {tensor_specs.describe_spec(s)}"
                      for k, s in sorted(specs.items())]
    files = (
        ("Vertex explanation metadata", names.extra_path(export_dir, names.VERTEX_METADATA_FILE)),
        ("Vertex explanation parameters",
         names.extra_path(export_dir, names.VERTEX_PARAMETERS_FILE)),
        ("Legacy AI Platform metadata", names.join(export_dir, names.LEGACY_METADATA_FILE)),
        ("Provenance", names.extra_path(export_dir, names.PROVENANCE_FILE)),
    )
    for title, path in files:
        if not storage.exists(path):
            lines.append(f"{title}: none ({path} absent)")
            continue
        try:
            text = json.dumps(storage.read_json(path), indent=2, sort_keys=True)
        except ValueError as e:  # not JSON: show why rather than crash
            text = f"unreadable JSON: {e}"
        lines.append(f"{title} ({path}):")
        lines += ["  " + line for line in text.splitlines()]
    sample_path = names.extra_path(export_dir, names.SAMPLE_FILE)
    if storage.exists(sample_path):
        # The stored entries carry dtype and shape: no need to decode tensors.
        entries = storage.read_json(sample_path)
        lines.append(f"Stored sample ({sample_path}):")
        lines += [f"  {k}  {e['dtype']}{e['shape']}" for k, e in sorted(entries.items())]
    else:
        lines.append(f"Stored sample: none ({sample_path} absent)")
    return "\n".join(lines)

"""What an export wrote: `ExportResult`."""

from xai_callback.signatures.specs import describe_spec


class ExportResult:
    """What an export wrote: its path, signatures, metadata and parameters."""

    def __init__(self, path, signatures, metadata, parameters, provenance):
        self.path = path
        self.signatures = signatures  # {name: (inputs, outputs)} of TensorSpecs
        self.metadata = metadata
        self.parameters = parameters
        self.provenance = provenance

    def describe(self):
        """Readable listing of the signatures (keys, dtypes, shapes)."""
        lines = [f"Export: {self.path}"]
        for name in sorted(self.signatures):
            inputs, outputs = self.signatures[name]
            ins = ", ".join(f"{k}: {describe_spec(s)}" for k, s in sorted(inputs.items()))
            outs = ", ".join(f"{k}: {describe_spec(s)}" for k, s in sorted(outputs.items()))
            lines.append(f"  {name}({ins}) -> {{{outs}}}")
        return "\n".join(lines)

    def __repr__(self):
        return f"ExportResult(path={self.path!r}, signatures={sorted(self.signatures)})"

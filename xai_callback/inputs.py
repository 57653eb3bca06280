"""Documented import path kept working: `xai_callback.inputs.as_input_dict`.

The conversion lives in `xai_callback.signatures.inputs`.
"""

from xai_callback.signatures.inputs import as_input_dict

__all__ = ["as_input_dict"]

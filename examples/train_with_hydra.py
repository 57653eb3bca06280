"""Train and export from a Hydra config (hydra/train.yaml), with Hydra's overrides.

Hydra composes the config; `train_from_config` builds and fits it, turning
every `_target_` section (the model, data, optimizer, metrics and callbacks,
`XaiExportCallback` among them) into its object with `hydra.utils.instantiate`.

    python examples/train_with_hydra.py export_dir=/tmp/from_hydra fit.epochs=5
"""

import hydra
from omegaconf import OmegaConf

from train_from_config import report, train_from_config


@hydra.main(config_path="hydra", config_name="train", version_base=None)
def main(config):
    _, history, callbacks = train_from_config(OmegaConf.to_container(config, resolve=True))
    report(history, callbacks)


if __name__ == "__main__":
    main()

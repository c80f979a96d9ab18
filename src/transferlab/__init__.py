"""transferlab: config-driven transfer-learning experiments.

Hydra composes backbone, data, strategy and trainer configs; a staged engine runs each stage as its own
Lightning ``Trainer.fit`` and writes TensorBoard events, checkpoints, ``metrics.json`` and a safetensors model.
"""

from transferlab import _startup

__version__ = "0.1.0"

_startup.install()

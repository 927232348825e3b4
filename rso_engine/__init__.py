"""rso_engine: a Qt-free library that trains small CNNs with RSO (arXiv 2005.05955) and SGD.

The main entry points:

- :func:`rso_engine.backend.get_backend` picks NumPy or CuPy once for the process.
- :func:`rso_engine.data.load_dataset` loads a dataset by name.
- :func:`rso_engine.models.build_model` builds OneConv, TwoConv, the paper's BN net or an MLP.
- :class:`rso_engine.training.RSOTrainer` runs Algorithm 1 as a generator of events.
- :class:`rso_engine.training.SGDTrainer` runs the backprop baseline with the same events.
- :class:`rso_engine.experiment.RunConfig` describes a reproducible run.
"""

__version__ = "0.1.0"

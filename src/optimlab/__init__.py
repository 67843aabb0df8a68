"""optimlab: gradient-based optimizers for PyTorch and a lab that compares them.

- ``optimlab.optim``: SGD, Adagrad, RMSprop, Adam, AdamW, Adadelta, each update rule written
  once, drop-in for (and bit-identical to) ``torch.optim``.
- ``optimlab.data``, ``optimlab.models``, ``optimlab.engine``: datasets, the seed notebooks'
  models and a fit loop with validation, early stopping, schedulers and exact resume.
- ``optimlab.lab``: ``optimlab compare`` and the run store.
"""

__version__ = "0.1.0"

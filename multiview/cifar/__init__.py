"""CIFAR mode: the paper's real-data experiments (spec §6, §10) on CIFAR-10 / CIFAR-100.

Modules, one job each:

* :mod:`~multiview.cifar.config`: the run's configuration (data, network, recipe, protocol, seed);
* :mod:`~multiview.cifar.recipes`: the recipe section, the ``paper`` and ``fast`` recipes, the schedule;
* :mod:`~multiview.cifar.data`: reading the data sets from the layouts users have, with a cache;
* :mod:`~multiview.cifar.pipeline`: the data set on the device as uint8, batched augmentation;
* :mod:`~multiview.cifar.nets`: the fast default network, WideResNets, ResNet-34;
* :mod:`~multiview.cifar.train`: the optimizer, one training loop (labels, KD, the average), evaluation;
* :mod:`~multiview.cifar.run`: a run as its stages see it (data on the device, trained models);
* :mod:`~multiview.cifar.fit`: one model of a run, trained or loaded from its checkpoint;
* :mod:`~multiview.cifar.protocol`: single models, ensemble, KD, self-KD, channel split, overlap;
* :mod:`~multiview.cifar.mistakes`: which test images which models get wrong, and how those sets overlap;
* :mod:`~multiview.cifar.report`, :mod:`~multiview.cifar.cli`: tables and the ``multiview cifar`` command.

Importing this package is cheap: nothing here imports torch until a module that needs it is used.
"""

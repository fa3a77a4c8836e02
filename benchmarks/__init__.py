"""The benchmarks: thin scripts over the training toolkit (:mod:`essl_aug.experiments`) and the library.

Run each from the repository root as a module: ``python -m benchmarks.quality``, ``python -m benchmarks.cifar10``,
``python -m benchmarks.photonics``, ``python -m benchmarks.speed``, ``python -m benchmarks.speed_profile``; tests
import them the same way (``from benchmarks import quality``). Results go to ``benchmarks/results/``.
"""

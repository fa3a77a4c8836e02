"""The benchmarks: thin scripts over the training toolkit (:mod:`benchmarks.toolkit`) and the library.

Run each from the repository root as a module: ``python -m benchmarks.demo`` (the main job, ``make demo``),
``python -m benchmarks.quality``, ``python -m benchmarks.fashion_mnist``, ``python -m benchmarks.objectives``,
``python -m benchmarks.cifar10``, ``python -m benchmarks.photonics``, ``python -m benchmarks.step_cost``,
``python -m benchmarks.speed``, ``python -m benchmarks.traffic``, ``python -m benchmarks.views``, and the
family-grid viewer ``python -m benchmarks.show``; tests import them the same way (``from benchmarks import
quality``). Results go to ``benchmarks/results/``. None of this is in the wheel: the
package never imports ``benchmarks``; the benchmarks import the package.
"""

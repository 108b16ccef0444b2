"""The one seam to Faust: everything that imports ``faust`` lives in this package.

The stages (:mod:`pipelines.streaming.levels`, ``rollups``, ``alerts``) are written against
:mod:`pipelines.streaming.stage`; here are the app factory (:mod:`.app`), the declarations
(:mod:`.wiring`, :mod:`.declare`), the adapters (:mod:`.intake`, :mod:`.states`,
:mod:`.produce`), the worker class (:mod:`.worker`), the broker credentials
(:mod:`.credentials`) and the patches of Faust internals (:mod:`.compat`, :mod:`.fetchwait`),
each checked against the installed Faust by :func:`.patches.install`.
"""

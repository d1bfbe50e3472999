"""The reference exchange core; ``CRUCIBLE_PURE_PYTHON=1`` runs its compiled modules from source."""

from reference_impl import core_build as _core_build

if _core_build.pure_requested():
    _core_build.prefer_source()

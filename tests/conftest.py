"""Test settings shared by every fast test."""

from hypothesis import settings

# The machine is shared with compilers and databases during `make test`: a per-example
# deadline would turn load into flaky failures, and timings belong in bench/, not in tests.
settings.register_profile("dataward", deadline=None, print_blob=True)
settings.load_profile("dataward")

"""Tests of dataward.checks."""

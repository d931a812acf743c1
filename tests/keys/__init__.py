"""Tests of dataward.keys."""

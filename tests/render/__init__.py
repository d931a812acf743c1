"""Tests of dataward.render."""

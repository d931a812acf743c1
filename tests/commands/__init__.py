"""Tests of dataward.commands."""

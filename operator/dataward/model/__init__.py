"""Typed, frozen values parsed once from the API's dicts, and the rules that need no cluster."""

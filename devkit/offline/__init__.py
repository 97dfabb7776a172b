"""Offline engine harness: the Pulumi program, dynamic providers and policy packs over their own protocols.

See docs/harness.md. Submodules import Pulumi lazily; importing this package has no side effects.
"""

"""The project's own tooling: the Pulumi toolchain build, the local sandbox, the offline engine.

Product code (components/, microvms/, policies/) never imports this package.
"""

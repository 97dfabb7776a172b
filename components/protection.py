"""``lambda-microvms:protect``: the resource options of a stack's protected resources.

A protected stack (``protect: true``, on in prod) marks the artifact bucket, every image and every
log group ``protect`` (``pulumi destroy`` refuses, naming them) and ``retain_on_delete`` (a resource
that leaves the program stays in the account). Nothing else is marked: components would pass
``protect`` on to all their children, so the options go on those resources only.
"""

from __future__ import annotations

import pulumi


def protection(protect: bool) -> pulumi.ResourceOptions:
    """Options for one protected resource; an unprotected stack gets empty options (not
    ``protect=False``), so its resources register exactly the options they always had."""
    if not protect:
        return pulumi.ResourceOptions()
    return pulumi.ResourceOptions(protect=True, retain_on_delete=True)

"""Lambda MicroVM image: dynamic provider, dynamic resource and component.

``from components.microvm_image import MicrovmImage, MicrovmImageArgs`` in the program;
the provider is ``components.microvm_image.provider.MicrovmImageProvider`` (pickled by reference).
"""

from .component import MicrovmImage, MicrovmImageArgs, image_props
from .provider import MicrovmImageError, MicrovmImageProvider
from .resource import MicrovmImageResource

__all__ = [
    "MicrovmImage",
    "MicrovmImageArgs",
    "MicrovmImageError",
    "MicrovmImageProvider",
    "MicrovmImageResource",
    "image_props",
]

"""lambda-microvms: settings → components → exports. Keep this file thin."""

import pulumi

from components.config import load_settings

settings = load_settings()

pulumi.export("environment", settings.environment)
pulumi.export("region", settings.region)

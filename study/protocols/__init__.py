"""The protocols a campaign can run, one module each: ACR, DCR and paired comparison.

Importing this package registers them (`study.models.protocol.register`); the app does so when
it is ready. A new protocol is one module here with a `Protocol` subclass registered at import,
its trial template and its tests (docs/architecture.md, "Adding a protocol").
"""

from study.protocols import acr, dcr, pc  # noqa: F401  (registration at import)

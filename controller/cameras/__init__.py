"""The desk cameras, as the controller sees them: which desk each watches, the signing key
pinned for each, the chain heads they report, footage held after a dissatisfied rating
or by hand, and the clips uploaded, verified and kept for leaders to watch.

The camera's side of the contract is :mod:`wire.camera` (events, commands, upload
paths) and :mod:`wire.footage` (the manifest chain and its verification). Nothing
here knows HTTP; :mod:`controller.web.routers.cameras` is the API over it.
"""

from controller.cameras.service import Cameras

__all__ = ["Cameras"]

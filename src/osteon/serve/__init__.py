"""osteon.serve: the web page and REST API of a run (extra ``serve``); see :mod:`osteon.serve.app`."""

from osteon.serve.app import ServeSettings, create_app

__all__ = ["ServeSettings", "create_app"]

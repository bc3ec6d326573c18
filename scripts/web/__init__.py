"""The ``imgsearch serve`` web page: a Starlette app and one static HTML page."""

"""The web board: the page, its static files, and the guarded TCP side of the API."""

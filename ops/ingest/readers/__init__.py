"""One module per raw source format; each exposes ``read_*`` functions returning a `ReaderResult`."""

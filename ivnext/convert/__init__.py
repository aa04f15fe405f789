"""Weight converters from other formats (the library side of ``tools/convert``); not imported by ``import ivnext``."""

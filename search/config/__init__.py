"""The search config: typed sections (``schema``), YAML to dataclasses (``coerce``), and what a
search runs from it (``compose``)."""

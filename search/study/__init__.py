"""The Optuna study, the search's source of truth (``core``), its SQLite storage mirrored in
memory (``storage``), the searcher Ray Tune asks (``searcher``) and phase-2 sharing (``sharing``)."""

"""What starts a search: phase 1's models (``models``), checks before anything is written
(``preflight``), hub data resolved once (``resolve``), the Ray session (``raysession``) and the
Tune ``Tuner`` (``tuner``)."""

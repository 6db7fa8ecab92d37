"""Where a search is watched: MLflow written from the driver (``tracker``) through an outbox
(``outbox``), tracking URIs (``uris``), Tune's callbacks (``callbacks``) and console progress
(``progress``)."""

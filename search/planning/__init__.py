"""What a search will cost before it runs (``cost``, the dry run in ``dryrun``) and what it has
spent while it runs (``spend``: ``search.budget``)."""

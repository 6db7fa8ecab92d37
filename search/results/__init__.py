"""What a search found, read from one table of trials: Pareto arithmetic (``pareto``), the front
(``front``), the findings and report (``findings``), figures, and the ``pareto``, ``report`` and
``confirm`` commands (``show``, ``confirm``)."""

"""The ``celery`` executor: tasks sent through a Celery broker to ``cyclotron worker``
processes on any machine, which report back through the worker routes."""

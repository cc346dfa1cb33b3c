"""The Celery application both sides share: the server sends, ``cyclotron worker`` runs."""

from __future__ import annotations

from celery import Celery

from cyclotron.settings import CeleryExecutorSettings

TASK_NAME = "cyclotron.run_task"


def celery_app(settings: CeleryExecutorSettings) -> Celery:
    """A Celery app on the configured broker.

    Messages are acknowledged only once their task has ended (``acks_late``), and one whose
    worker died is delivered again (``reject_on_worker_lost``; on Redis after
    ``visibility_timeout``). A worker takes one message per free slot, never a backlog.
    """
    app = Celery("cyclotron", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue=settings.queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout},
    )
    return app

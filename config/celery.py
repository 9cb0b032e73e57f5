import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("srmos")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Network methods go to GPU workers, interpolation and metrics to CPU workers.
app.conf.task_queues = (Queue("gpu"), Queue("cpu"))
# The tasks live in study.generation.tasks and study.datasets.tasks (imports from the admin).
app.autodiscover_tasks(["study.generation", "study.datasets"])

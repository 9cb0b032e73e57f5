import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("srmos")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("gpu"), Queue("cpu"))

# Networks run on GPU workers, and so does the check of a registered model (it runs where the
# model will). Everything else is CPU work kept off the GPU workers: interpolation, HR references
# and imported results (mostly PNG coding and metrics), the metric panel, imports (decoding and
# re-encoding images) and the fan-out that publishes a campaign's tasks.
GPU_TASKS = {"study.tasks.validate_model"}


def route(name, args, kwargs, options, task=None, **kw):
    """The one place that picks a task's queue (Celery's `task_routes`)."""
    if name == "study.tasks.generate_candidate":
        # The publisher passes the candidate's Method.kind, so that publishing a campaign costs
        # no query per message.
        on_gpu = (kwargs or {}).get("method_kind") == "network"
    else:
        on_gpu = name in GPU_TASKS
    return {"queue": "gpu" if on_gpu else "cpu"}


app.conf.task_routes = (route,)
# The tasks live in study.generation.tasks and study.datasets.tasks (imports from the admin).
app.autodiscover_tasks(["study.generation", "study.datasets", "study.reports"])

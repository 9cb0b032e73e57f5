import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

# Load the URLs (and with them every view) now, then set everything loaded so far aside from
# garbage collection: a full collection then walks what requests made, not Django's and the
# app's hundreds of thousands of long-lived objects (gc.freeze, as gunicorn's docs advise).
import config.urls  # noqa: E402,F401

gc.freeze()

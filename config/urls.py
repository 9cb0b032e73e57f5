from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("study.urls")),
]

# A rater request that fails on a lost database answers 503 and retries (config/outage.py).
handler500 = "config.outage.server_error"

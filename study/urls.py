from django.urls import path

from study.rating import display, images, join, views, vote

app_name = "study"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("join/<str:recruit_token>/", join.join, name="join"),
    path("r/<str:token>/", views.session, name="session"),
    path("r/<str:token>/consent/", views.consent, name="consent"),
    path("r/<str:token>/display/", display.display_check, name="display"),
    path("r/<str:token>/calibration/", views.calibration_done, name="calibration"),
    path("r/<str:token>/vote/", vote.vote, name="vote"),
    path("r/<str:token>/done/", views.done, name="done"),
    path("r/<str:token>/t/<int:position>.png", images.trial_image, name="image"),
    path("r/<str:token>/ref/<int:position>.png", images.reference_image, name="reference"),
    path("r/<str:token>/b/<int:position>.png", images.partner_image, name="partner"),
    path("r/<str:token>/c/<str:public_id>.png", images.calibration_image, name="calibration_image"),
]

from django.urls import path

from study import views

app_name = "study"

urlpatterns = [
    path("", views.home, name="home"),
    path("r/<str:token>/", views.session, name="session"),
    path("r/<str:token>/vote/", views.vote, name="vote"),
    path("r/<str:token>/done/", views.done, name="done"),
    path("r/<str:token>/img/<str:public_id>", views.trial_image, name="image"),
]

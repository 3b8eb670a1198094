from django.urls import path

from . import views

app_name = "storefront"

urlpatterns = [
    path("", views.landing_or_home, name="home"),
]

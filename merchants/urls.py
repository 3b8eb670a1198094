from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.dashboard_home, name="home"),
    path("merchant/", views.merchant_switch, name="merchant-switch"),
]

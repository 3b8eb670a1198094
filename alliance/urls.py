from django.urls import path

from . import views

console_patterns = ([path("", views.console_home, name="home")], "console")
explorer_patterns = ([path("", views.explorer_home, name="home")], "explorer")

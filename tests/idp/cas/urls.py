"""The test CAS server's URLs: django-cas-server's at the root (``/login``,
``/p3/serviceValidate``...), as a CAS server usually is."""

from django.urls import include, path

urlpatterns = [path("", include(("cas_server.urls", "cas_server"), namespace="cas_server"))]

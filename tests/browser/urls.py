"""The project's URLs plus the admin's static files, which the browser test's node serves itself.

In production a proxy serves the collected static files; a lone daphne test
node has nobody in front of it, and without the admin's CSS the screenshots
would show an unstyled page that no operator ever sees.
"""

from django.contrib.staticfiles.views import serve
from django.urls import re_path

from mcpsite.urls import urlpatterns as project_urlpatterns

urlpatterns = [*project_urlpatterns, re_path(r"^static/(?P<path>.*)$", serve, {"insecure": True})]

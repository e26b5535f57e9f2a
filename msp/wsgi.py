import os

from django.core.wsgi import get_wsgi_application

from msp.memory import malloc_keep_request_buffers

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "msp.settings")
# In each web worker (gunicorn loads this after forking): large request bodies reuse the
# heap's pages instead of faulting in fresh ones every request (msp/memory.py).
malloc_keep_request_buffers()
application = get_wsgi_application()

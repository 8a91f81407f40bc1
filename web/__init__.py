"""The aiohttp applications: the ops endpoints, ``/rapport``, ``/api/instroom`` and the advice answer form.

Each page is a thin adapter: it parses the request, calls one service and renders the answer.
"""

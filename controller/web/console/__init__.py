"""The web console: server-rendered pages for the radio operator, the leaders, the
technicians and the admin, Vietnamese first (English on a switch).

Pages are Jinja2 templates translated through gettext catalogs (Babel, see
:mod:`controller.web.console.i18n`); htmx, from the controller's own copy,
adds live parts (alerts over server-sent events) and posts to the JSON API
with the session's CSRF token. Every page declares its roles like an API
route, and the gate sends a stranger to the sign-in page. Nothing is loaded
from outside the controller.
"""

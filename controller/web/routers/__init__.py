"""One router per domain; :func:`controller.web.app.create_app` composes them."""

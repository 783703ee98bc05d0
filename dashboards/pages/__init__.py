"""The pages of the app. Each module has ``PATH``, ``TITLE``, ``layout(ctx, query)`` and
``register(app, ctx)`` (its callbacks, bound to that app: no global registry)."""

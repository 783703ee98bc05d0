"""dashboards: the live plant in the browser (Plotly Dash), over the MES's public API.

Entry points:

- ``mestwin dashboard --mes-url URL [--port 8050] [--user U --password P] [--report F]``
- ``dashboards.app.serve(mes_url, port, credentials=Credentials(user, password),
  reports=[path], block=False)``: serve from a thread (``port=0``: any free port) and get
  a handle with ``.url`` and ``.stop()``; what ``mestwin run --dashboard`` calls.
- ``dashboards.app.create_app(mes_url, ...)``: the Dash app itself.
- ``mestwin bench dashboards``: page build and request times for the reference plant.
"""

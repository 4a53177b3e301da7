"""``meiyan serve``: the REST API and the browser UI on one FastAPI app, over the same calls and
settings as the command line (:mod:`meiyan.serve.schema`).

Modules: ``schema`` (settings of each job), ``jobs`` (the jobs, bytes in and bytes out),
``upload`` (multipart bodies into a private folder, bounded), ``app`` (the FastAPI app, limits,
errors), ``ui`` (the Gradio UI), ``cli`` (the command), ``options`` (the CLI's ``--settings``).
The web modules need the ``web`` extra (``pip install 'meiyan[web]'``).
"""

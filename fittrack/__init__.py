"""The ``fittrack`` command line: wiring only (DESIGN §2). Nothing imports this package.

Each subcommand lives in the package that owns it and is imported only when run, so that
``fittrack --help`` is instant and an edge device never imports the server's dependencies.
"""

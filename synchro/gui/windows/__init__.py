"""The windows: one module each, a ``build_*``/``make_*`` layout and a controller."""

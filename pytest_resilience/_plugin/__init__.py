"""The plugin's parts: shared session state and one module of fixtures per fault family."""

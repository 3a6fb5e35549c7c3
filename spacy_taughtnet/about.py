"""The plugin's version, in a module with no imports (read by setup.py and the component)."""
__version__ = "0.2.0"

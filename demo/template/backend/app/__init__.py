"""DawsOS portfolio backend."""

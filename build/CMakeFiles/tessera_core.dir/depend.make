# Empty dependencies file for tessera_core.
# This may be replaced when dependencies are built.

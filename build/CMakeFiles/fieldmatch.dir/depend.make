# Empty dependencies file for fieldmatch.
# This may be replaced when dependencies are built.

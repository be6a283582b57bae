# man: filled in by the module

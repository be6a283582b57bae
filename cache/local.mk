# cache: filled in by the module

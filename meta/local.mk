# meta: filled in by the module

# objstore: filled in by the module

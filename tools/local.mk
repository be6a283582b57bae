# tools: filled in by the module

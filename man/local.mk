# man pages of the module owners.
dist_man_MANS += man/tessera.1

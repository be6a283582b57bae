# meta unit tests

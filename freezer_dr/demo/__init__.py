"""The embedded demo: a whole deployment on one machine."""

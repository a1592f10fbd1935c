"""Server-rendered HTML pages: the public tracking pages for customers."""

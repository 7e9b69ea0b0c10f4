pytest_plugins = ["biocount.testing"]

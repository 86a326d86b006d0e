"""Test ordering: fast unit tests on tiny networks first, the end-to-end CLI tests last."""


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: "/e2e/" in f"/{item.nodeid}")  # stable: keeps the order within each part

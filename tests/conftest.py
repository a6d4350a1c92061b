"""Shared pytest configuration; fixtures live in plugin modules under tests/support."""

pytest_plugins = [
    "tests.support.rabbitmq",
    "tests.support.mongo",
    "tests.support.dovecot",
]

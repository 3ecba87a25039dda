import os
import subprocess
import sys

from migrationkit.workshop.seeding import UserFactory


def test_usernames_and_emails_are_unique() -> None:
    users = list(UserFactory(3).users(20_000))
    assert len({u["username"] for u in users}) == len({u["email"] for u in users}) == 20_000


def test_the_same_seed_gives_the_same_users_in_another_process() -> None:
    # A different hash seed changes set and dict-of-str iteration order between processes.
    script = "from migrationkit.workshop import UserFactory; print(list(UserFactory(5).users(50)))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in (1, 2, 3)
    }
    assert len(outputs) == 1


def test_appending_continues_the_numbering() -> None:
    factory = UserFactory(0)
    assert next(factory.users(1, start=7))["username"].endswith("7")

"""Repositories: the only code that speaks MongoDB or SQL about users."""

from migrationkit.repositories.mongo import UserMongoRepository
from migrationkit.repositories.postgres import UserPostgresRepository

__all__ = ["UserMongoRepository", "UserPostgresRepository"]

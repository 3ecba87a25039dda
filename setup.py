"""The one compiled part: rows from raw BSON in C (migrationkit/_mapping/_fastrows.c).

``optional=True``: without a C compiler the build still succeeds and every document
takes the Python normalizer (``migrationkit doctor`` says which path a run takes).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "migrationkit._mapping._fastrows",
            ["migrationkit/_mapping/_fastrows.c"],
            extra_compile_args=["-O2", "-std=c11"],
            optional=True,
        )
    ]
)

"""The worker clusters (asyncio, threading, multiprocessing) behind one base class."""

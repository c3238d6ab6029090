"""Numeric kernels (Numba when available) and streaming state objects. Pure: no I/O, no asyncio."""

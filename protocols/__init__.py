"""Pure codecs: bytes in, typed samples out, and back. No I/O, no asyncio.

Sub-packages: ``wire`` (the protobuf batch codec), and, as they land, ``ble`` (GATT
characteristics), ``fit`` (FIT files) and ``cloud`` (cloud API payloads).
"""

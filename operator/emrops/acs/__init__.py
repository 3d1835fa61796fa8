"""The Alibaba Cloud RPC wire protocol shared by the client and the emulator.

Pure functions and tables only: no I/O, no HTTP library, nothing above it in emrops.
"""

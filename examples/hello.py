"""A first script for Stockade: what a sandbox looks like from inside."""
import os
import platform
import socket
import sys

print(f"hello from {socket.gethostname()}: Python {platform.python_version()}, uid {os.getuid()}, cwd {os.getcwd()}")
print(f"arguments: {sys.argv[1:]}")
print(f"kernel: {platform.release()} (the hardened tier shows gVisor's, the standard tier the host's)")
print(f"network interfaces: {[name for _, name in socket.if_nameindex()]}")
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    print("network: reachable (unexpected!)")
except OSError as e:
    print(f"network: {e.strerror or e} (sandboxes have no network by default)")
with open("/home/user/result.txt", "w") as f:
    f.write("written inside the sandbox\n")
print("wrote /home/user/result.txt")

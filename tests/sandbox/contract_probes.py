"""The escape probes of the sandbox contract, as code templates.

Each probe tries the most direct route Python offers and prints what it got, so a
leak shows up in the output. The probes do not assume a policy: in the local sandbox
`import os` fails, in the process sandbox it works and the process is the boundary.
The tests judge the effect on the host, never the way the code was stopped.

Templates are filled with `str.format`: `{secret}` / `{target}` are quoted host
paths, `{port}` the listener's port, `{host_pid}` the pid of the test process and
`{env}` the quoted name of the host's secret environment variable.
"""

from __future__ import annotations

SECRET = "contract-s3cr3t-7f1c9a"
ENV_NAME = "RLMRT_CONTRACT_SECRET"

# -- reading a secret file on the host ---------------------------------------------------

READ_FILE = {
    "open": "print(open({secret}).read())",
    "io-open": "import io\nprint(io.open({secret}).read())",
    "pathlib": "import pathlib\nprint(pathlib.Path({secret}).read_text())",
    "os-read": "import os\nfd = os.open({secret}, os.O_RDONLY)\nprint(os.read(fd, 1000))",
    "subprocess-cat": (
        "import subprocess\n"
        "print(subprocess.run(['cat', {secret}], capture_output=True, text=True).stdout)"
    ),
    "os-popen": "import os\nprint(os.popen('cat ' + {secret}).read())",
    "dunder-import": "print(__import__('builtins').open({secret}).read())",
    "proc-host-cwd": "print(open('/proc/{host_pid}/cwd/secret.txt').read())",
    "proc-host-root": "print(open('/proc/{host_pid}/root' + {secret}).read())",
}

# -- writing a file on the host -----------------------------------------------------------

WRITE_FILE = {
    "open": "f = open({target}, 'w')\nf.write('pwned')\nf.close()\nprint('wrote')",
    "pathlib": "import pathlib\npathlib.Path({target}).write_text('pwned')\nprint('wrote')",
    "os-open": (
        "import os\nfd = os.open({target}, os.O_WRONLY | os.O_CREAT)\n"
        "os.write(fd, b'pwned')\nos.close(fd)\nprint('wrote')"
    ),
    "proc-host-cwd": "open('/proc/{host_pid}/cwd/written.txt', 'w').write('pwned')\nprint('wrote')",
    "dunder-import": "__import__('builtins').open({target}, 'w').write('pwned')",
}

# -- running a shell command that would create a host file --------------------------------

SHELL = {
    "os-system": "import os\nprint(os.system('touch ' + {target}))",
    "subprocess-run": "import subprocess\nprint(subprocess.run(['touch', {target}]))",
    "subprocess-shell": (
        "import subprocess\nprint(subprocess.run('touch ' + {target}, shell=True))"
    ),
    "os-popen": "import os\nprint(os.popen('touch ' + {target}).read())",
    "pty-spawn": "import pty\npty.spawn(['touch', {target}])",
    "dunder-import": "__import__('os').system('touch ' + {target})",
}

# -- opening a TCP connection to a listener on 127.0.0.1 ----------------------------------

NETWORK = {
    "socket": (
        "import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "s.sendall(b'hi')\nprint('connected')"
    ),
    "urllib": (
        "import urllib.request\n"
        "print(urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=2).read())"
    ),
    "http-client": (
        "import http.client\nc = http.client.HTTPConnection('127.0.0.1', {port}, timeout=2)\n"
        "c.request('GET', '/')\nprint('sent')"
    ),
    "subprocess-python": (
        "import subprocess, sys\n"
        'line = \'import socket; socket.create_connection(("127.0.0.1", {port})).send(b"hi")\'\n'
        "print(subprocess.run([sys.executable, '-c', line], capture_output=True, timeout=5))"
    ),
    "dunder-import": "__import__('socket').create_connection(('127.0.0.1', {port}), timeout=2)",
}

# -- reading a secret environment variable of the host ------------------------------------

ENVIRONMENT = {
    "os-environ": "import os\nprint(os.environ.get({env}))\nprint(dict(os.environ))",
    "os-getenv": "import os\nprint(os.getenv({env}))",
    "proc-self": "print(open('/proc/self/environ').read())",
    "proc-host": "print(open('/proc/{host_pid}/environ').read())",
    "subprocess-env": (
        "import subprocess\nprint(subprocess.run(['env'], capture_output=True, text=True).stdout)"
    ),
    "sys-modules": "import sys\nprint(sys.modules['os'].environ)",
}

# -- changing the host's modules and process state ----------------------------------------
# The test checks json.dumps, os.environ, the working directory and sys.path afterwards.

HOST_STATE = {
    "json-assign": "import json\njson.dumps = None",
    "json-setattr": "import json\nsetattr(json, 'dumps', None)",
    "json-delattr": "import json\ndel json.dumps",
    "json-sys-modules": "import sys\nsys.modules['json'].dumps = None",
    "json-dunder-import": "__import__('json').dumps = None",
    "json-encoder-class": "import json\njson.JSONEncoder.item_separator = 'X'",
    "os-environ-set": "import os\nos.environ['RLMRT_CONTRACT_INJECTED'] = '1'",
    "os-chdir": "import os\nos.chdir('/')",
    "sys-path": "import sys\nsys.path.insert(0, '/nonexistent-rlmrt')",
}

# -- resource limits -----------------------------------------------------------------------

# Each falls back to a plain Python loop where the faster route is not available.
INFINITE = {
    "loop": "while True:\n    pass",
    "swallowing-loop": (
        "while True:\n    try:\n        while True:\n            pass\n"
        "    except BaseException:\n        pass"
    ),
    "sleep": (
        "try:\n    from time import sleep\nexcept ImportError:\n    sleep = None\n"
        "if sleep is None:\n    while True:\n        pass\nsleep(600)"
    ),
    "child-process": (
        "try:\n    import subprocess\nexcept ImportError:\n    subprocess = None\n"
        "if subprocess is None:\n    while True:\n        pass\n"
        "subprocess.run(['sleep', '600'])"
    ),
}

# Kept inside a function so the memory is freed when the error unwinds the frame.
MEMORY = {
    "gradual": "def grow():\n    x = []\n    while True:\n        x.append('a' * 1000000)\ngrow()",
    "one-shot": "def grab():\n    return bytearray(10**10)\ngrab()",
    "doubling": (
        "def double():\n    s = 'a' * 1000000\n    while True:\n        s = s + s\ndouble()"
    ),
}

# Forks many children that sleep and exit: bounded even where nothing contains it,
# so a failing backend cannot take the machine down. Contained means fork is refused
# (or the code fails) before `limit` children exist.
FORK = """\
import os
import time
forked = 0
try:
    for _ in range(300):
        pid = os.fork()
        if pid == 0:
            try:
                time.sleep(3)
            finally:
                os._exit(0)
        forked += 1
except BaseException as exc:
    print('refused:', repr(exc))
print('forked', forked)
"""

FLOOD = {
    "print": "for i in range(100000):\n    print('x' * 100)",
    "one-print": "print('y' * 10**7)",
    "stdout-write": (
        "try:\n    import sys\nexcept ImportError:\n    sys = None\n"
        "if sys is None:\n    print('z' * 10**7)\nelse:\n    sys.stdout.write('z' * 10**7)"
    ),
    "stderr-write": (
        "try:\n    import sys\nexcept ImportError:\n    sys = None\n"
        "if sys is None:\n    print('w' * 10**7)\nelse:\n    sys.stderr.write('w' * 10**7)"
    ),
    "os-write": (
        "try:\n    import os\nexcept ImportError:\n    os = None\n"
        "if os is None:\n    print('v' * 10**7)\nelse:\n    os.write(1, b'v' * 10**7)"
    ),
}

#!/usr/bin/env python3
"""fild vs supervisord benchmark harness (stdlib only). See bench/README.md.

Runs fild and supervisord from the same generated program files, alternating round by round
within each figure, and prints a markdown table of medians, maxima, limits and ratios.

Everything it starts is a child of this process (which is also a child subreaper, so
orphans come back to it); everything is stopped by pid in a `finally`, and every wait is
bounded in count and time. Network use is 127.0.0.1 only.
"""

import argparse
import ctypes
import http.client
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import xmlrpc.client

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1 << 20


class BenchError(Exception):
    pass


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def wait_for(pred, timeout, what, interval=0.01):
    """Poll pred() until it returns a truthy value; raise after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------
# /proc helpers


def proc_stat_fields(pid):
    """Fields of /proc/pid/stat after the command name (index 0 = state)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2 :].split()


def alive(pid):
    """True while pid exists and is not a zombie."""
    f = proc_stat_fields(pid)
    return f is not None and f[0] not in ("Z", "X")


def cpu_seconds(pid):
    """utime + stime of pid (all its threads, live and exited), in seconds."""
    f = proc_stat_fields(pid)
    if f is None:
        raise BenchError(f"process {pid} is gone (cannot read its CPU time)")
    return (int(f[11]) + int(f[12])) / CLK_TCK


def rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def ctxt_switches(pid):
    """Voluntary context switches (wake-ups) summed over pid's live threads."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            f = proc_stat_fields(d)
            if f is not None and int(f[1]) == pid:
                out.append(int(d))
    return out


def descendants(pid):
    out, todo = [], [pid]
    for _ in range(100000):
        if not todo:
            break
        p = todo.pop()
        for c in children_of(p):
            out.append(c)
            todo.append(c)
    return out


def kill_pid(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def set_child_subreaper():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except OSError:
        pass


# ---------------------------------------------------------------------------------------
# Process registry and cleanup

STARTED = []  # Popen objects of long-lived children (daemons, runsv, shells)


def spawn(argv, log_path=None, **kw):
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        p = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, **kw
        )
    finally:
        if log_path:
            out.close()
    STARTED.append(p)
    return p


def stop_popen(p, timeout=30.0, sig=signal.SIGTERM):
    """SIGTERM (or sig), wait up to timeout, then SIGKILL. Returns the exit code."""
    if p.poll() is None:
        kill_pid(p.pid, sig)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"pid {p.pid} ({p.args[0]}) did not stop in {timeout:g} s; SIGKILL")
            kill_pid(p.pid, signal.SIGKILL)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
    if p in STARTED:
        STARTED.remove(p)
    return p.returncode


def cleanup_all():
    """Stop everything this harness started, by pid: registered children first, then any
    descendant or orphan left (we are a subreaper, so orphans are our children)."""
    for p in list(STARTED):
        try:
            stop_popen(p, timeout=20)
        except Exception as e:  # noqa: BLE001 - cleanup must go on
            log(f"cleanup: {e}")
    me = os.getpid()
    for _ in range(5):
        left = descendants(me)
        if not left:
            break
        for pid in left:
            kill_pid(pid, signal.SIGKILL)
        time.sleep(0.2)
        for pid in left:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
    left = [p for p in descendants(me) if alive(p)]
    if left:
        log(f"cleanup: processes still alive: {left}")


# ---------------------------------------------------------------------------------------
# HTTP over a Unix socket (fild's API, supervisord's XML-RPC)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path, timeout=30.0):
        super().__init__()
        self.unix_path = path
        self.timeout = timeout

    def make_connection(self, host):
        return UnixHTTPConnection(self.unix_path, self.timeout)


def http_json(path, method, url, body=None, timeout=60.0):
    c = UnixHTTPConnection(path, timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        c.request(method, url, body=data, headers=headers)
        r = c.getresponse()
        raw = r.read()
        if r.status >= 300:
            raise BenchError(f"{method} {url}: HTTP {r.status}: {raw[:300]!r}")
        return json.loads(raw) if raw else None
    finally:
        c.close()


def etcd_healthy(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
    try:
        c.request("GET", "/health")
        r = c.getresponse()
        body = r.read()
        return r.status == 200 and json.loads(body).get("health") == "true"
    except (OSError, ValueError, http.client.HTTPException):
        return False
    finally:
        c.close()


def free_ports(n):
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


# ---------------------------------------------------------------------------------------
# Configuration files


def program_block(name, command, **keys):
    """One [program:x] block with only keys fild and supervisord both understand."""
    lines = [f"[program:{name}]", "command=" + " ".join(shlex.quote(a) for a in command)]
    for k, v in keys.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        lines.append(f"{k}={v}")
    text = "\n".join(lines) + "\n"
    if "$" in text or "%" in text:
        # fild expands $VAR and %(x)s, supervisord %(x)s: keep the files literal for both.
        raise BenchError(f"program {name}: '$' or '%' in a program block: {text!r}")
    return text


def std_keys(logdir, name, **over):
    keys = dict(
        autostart=False,
        autorestart=True,
        startsecs=3,
        startretries=3,
        stopsignal="TERM",
        stopwaitsecs=10,
        stopasgroup=True,
        killasgroup=True,
        stdout_logfile=os.path.join(logdir, f"{name}.stdout.log"),
        stdout_logfile_maxbytes="50MB",
        stdout_logfile_backups=1,
        stderr_logfile=os.path.join(logdir, f"{name}.stderr.log"),
        stderr_logfile_maxbytes="50MB",
        stderr_logfile_backups=1,
    )
    keys.update(over)
    return keys


class Tools:
    def __init__(self, args):
        bindir = os.environ.get("FILD_BIN_DIR") or os.path.join(REPO, "target", "release")
        self.fild = os.path.join(bindir, "fild")
        self.filc = os.path.join(bindir, "filc")
        supdir = os.environ.get("SUPERVISOR_BIN_DIR") or os.path.join(REPO, "bench", ".venv", "bin")
        self.supervisord = os.path.join(supdir, "supervisord")
        self.supervisorctl = os.path.join(supdir, "supervisorctl")
        self.etcd = os.environ.get("ETCD_BIN") or shutil.which("etcd")
        self.runsv = shutil.which("runsv")
        self.hyperfine = shutil.which("hyperfine")
        self.perl = shutil.which("perl")
        missing = [
            n
            for n, p in [
                ("fild", self.fild),
                ("filc", self.filc),
                ("supervisord", self.supervisord),
                ("supervisorctl", self.supervisorctl),
                ("etcd", self.etcd),
                ("runsv", self.runsv),
                ("hyperfine", self.hyperfine),
                ("perl", self.perl),
            ]
            if not p or not os.access(p, os.X_OK)
        ]
        if missing:
            raise BenchError(
                "missing tools: " + ", ".join(missing) + " (bench/run.sh installs them; "
                "FILD_BIN_DIR, SUPERVISOR_BIN_DIR and ETCD_BIN override where they are looked for)"
            )


# ---------------------------------------------------------------------------------------
# The two daemons behind one interface


class Daemon:
    """fild or supervisord, run in the foreground as our child, with one programs file."""

    def __init__(self, kind, tools, root, programs_ini, minfds=8192):
        self.kind = kind
        self.tools = tools
        self.dir = os.path.join(root, kind)
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, f"{kind}.sock")
        self.conf = os.path.join(self.dir, f"{kind}.ini")
        self.proc = None
        d = self.dir
        if kind == "fild":
            text = (
                f"[unix_http_server]\nfile={self.sock}\n\n"
                f"[supervisord]\nlogfile={d}/fild.log\npidfile={d}/fild.pid\nminfds={minfds}\n\n"
                f"[supervisorctl]\nserverurl=unix://{self.sock}\n\n"
                f"[include]\nfiles={programs_ini}\n"
            )
        else:
            text = (
                f"[unix_http_server]\nfile={self.sock}\n\n"
                f"[supervisord]\nnodaemon=true\nlogfile={d}/supervisord.log\n"
                f"pidfile={d}/supervisord.pid\nminfds={minfds}\nchildlogdir={d}\n\n"
                "[rpcinterface:supervisor]\n"
                "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
                f"[supervisorctl]\nserverurl=unix://{self.sock}\n\n"
                f"[include]\nfiles={programs_ini}\n"
            )
        with open(self.conf, "w") as f:
            f.write(text)

    # -- life

    def start(self, timeout=60.0):
        if self.kind == "fild":
            argv = [self.tools.fild, "-c", self.conf]
        else:
            argv = [self.tools.supervisord, "-n", "-c", self.conf]
        self.proc = spawn(argv, os.path.join(self.dir, "daemon.out"))
        try:
            wait_for(self._ready, timeout, f"{self.kind} to answer on {self.sock}", 0.02)
        except BenchError:
            raise BenchError(f"{self.kind} did not come up; see {self.dir}/daemon.out:\n" + self.tail_out())
        return self

    def tail_out(self):
        try:
            with open(os.path.join(self.dir, "daemon.out"), errors="replace") as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return ""

    def _ready(self):
        if self.proc.poll() is not None:
            raise BenchError(
                f"{self.kind} exited with {self.proc.returncode} at start-up:\n" + self.tail_out()
            )
        if not os.path.exists(self.sock):
            return False
        try:
            if self.kind == "fild":
                http_json(self.sock, "GET", "/v1/version", timeout=2)
                return True
            return self.rpc(2).supervisor.getState()["statename"] == "RUNNING"
        except (OSError, BenchError, xmlrpc.client.Error, http.client.HTTPException):
            return False

    def stop(self, timeout=120.0):
        if self.proc is not None:
            rc = stop_popen(self.proc, timeout)
            self.proc = None
            return rc
        return None

    @property
    def pid(self):
        return self.proc.pid

    def guard_pids(self):
        """fild's guard process (a child of fild); none for supervisord."""
        if self.kind != "fild":
            return []
        out = []
        for c in children_of(self.pid):
            try:
                with open(f"/proc/{c}/cmdline", "rb") as f:
                    if b"--guard" in f.read():
                        out.append(c)
            except OSError:
                pass
        return out

    # -- control

    def ctl_argv(self, *args):
        tool = self.tools.filc if self.kind == "fild" else self.tools.supervisorctl
        return [tool, "-c", self.conf, *args]

    def ctl(self, *args, timeout=120.0, check=True):
        argv = self.ctl_argv(*args)
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{' '.join(argv)} took longer than {timeout:g} s")
        if check and r.returncode != 0:
            raise BenchError(
                f"{' '.join(argv)} exited {r.returncode}:\n{r.stdout[-2000:]}{r.stderr[-2000:]}"
            )
        return r

    def rpc(self, timeout=30.0):
        return xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=UnixTransport(self.sock, timeout))

    def processes(self):
        """name -> (STATE, pid) through the daemon's own API."""
        if self.kind == "fild":
            return {p["name"]: (p["state"], p["pid"]) for p in http_json(self.sock, "GET", "/v1/processes")}
        return {p["name"]: (p["statename"], p["pid"]) for p in self.rpc().supervisor.getAllProcessInfo()}

    def process(self, name):
        """(STATE, pid) of one program, asking for it alone (cheap with many programs)."""
        if self.kind == "fild":
            (p,) = http_json(self.sock, "GET", f"/v1/processes?names={name}")
            return p["state"], p["pid"]
        p = self.rpc().supervisor.getProcessInfo(name)
        return p["statename"], p["pid"]

    def api_start(self, names):
        """Start names concurrently without waiting for startsecs (set-up, never timed)."""
        if self.kind == "fild":
            self.ctl("start", *names)
        else:
            rpc = self.rpc()
            for n in names:
                rpc.supervisor.startProcess(n, False)

    def api_stop(self, names, timeout=60.0):
        if self.kind == "fild":
            self.ctl("stop", *names, timeout=timeout)
        else:
            rpc = self.rpc(timeout)
            for n in names:
                if self.processes()[n][0] in ("RUNNING", "STARTING", "BACKOFF"):
                    rpc.supervisor.stopProcess(n, True)
        wait_for(
            lambda: all(s in ("STOPPED", "EXITED", "FATAL") for n, (s, _) in self.processes().items() if n in names),
            timeout,
            f"{self.kind}: {names} to stop",
            0.05,
        )


# ---------------------------------------------------------------------------------------
# Statistics and the table


class Row:
    def __init__(self, figure, unit, fild, sup, limit=None, limit_label="", target=None, target_text="", note=""):
        self.figure = figure
        self.unit = unit
        self.fild = fild  # list of samples
        self.sup = sup
        self.limit = limit  # list of samples or None
        self.limit_label = limit_label
        self.target = target  # callable(fild_median, limit_median) -> bool, or None
        self.target_text = target_text
        self.note = note

    @staticmethod
    def med(xs):
        return statistics.median(xs) if xs else None

    def met(self):
        if self.target is None or not self.fild:
            return None
        return bool(self.target(self.med(self.fild), self.med(self.limit) if self.limit else None))


def fmt(v, unit):
    if v is None:
        return "—"
    if unit == "s":
        return f"{v:.3f} s" if v < 10 else f"{v:.1f} s"
    if unit == "ms":
        return f"{v:.2f} ms" if v < 10 else f"{v:.1f} ms"
    if unit == "MB":
        return f"{v:.1f} MB"
    if unit == "%":
        return f"{v:.3f} %"
    if unit == "cpu-s":
        return f"{v:.2f} s"
    if unit == "MB/s":
        return f"{v:.0f} MB/s"
    if unit == "n":
        return f"{v:g}"
    return f"{v:g} {unit}"


def cell(xs, unit):
    if not xs:
        return "—"
    m, mx = statistics.median(xs), max(xs)
    if len(xs) == 1:
        return fmt(m, unit)
    return f"{fmt(m, unit)} (max {fmt(mx, unit)})"


def render(rows, machine, settings):
    out = ["# fild benchmark results", "", "## Machine", ""]
    for k, v in machine:
        out.append(f"- {k}: {v}")
    out += ["", "## Settings", ""]
    for k, v in settings:
        out.append(f"- {k}: {v}")
    out += [
        "",
        "## Results",
        "",
        "Cells are the median, with the maximum in parentheses when there is more than one sample.",
        "",
        "| figure | fild | supervisord | limit | fild/supervisord | target | met? |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fm, sm = Row.med(r.fild), Row.med(r.sup)
        ratio = f"{fm / sm:.2f}" if fm is not None and sm else "—"
        lim = "—"
        if r.limit:
            lim = cell(r.limit, r.unit) + (f" ({r.limit_label})" if r.limit_label else "")
        met = r.met()
        met_s = "—" if met is None else ("yes" if met else "**no**")
        out.append(
            f"| {r.figure} | {cell(r.fild, r.unit)} | {cell(r.sup, r.unit)} | {lim} | {ratio} | "
            f"{r.target_text or '—'} | {met_s} |"
        )
    notes = [f"- {r.figure}: {r.note}" for r in rows if r.note]
    if notes:
        out += ["", "## Notes", ""] + notes
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------
# The etcd cluster (same command lines for fild, supervisord, the plain shell and runsv)


class Cluster:
    def __init__(self, tools, root):
        self.tools = tools
        self.root = os.path.join(root, "etcd")
        self.data = os.path.join(self.root, "data")
        self.spawns = os.path.join(self.root, "spawned")
        self.logs = os.path.join(self.root, "logs")
        for d in (self.spawns, self.logs):
            os.makedirs(d, exist_ok=True)
        ports = free_ports(6)
        self.client_ports = ports[:3]
        self.peer_ports = ports[3:]
        self.names = [f"etcd-{i}" for i in range(3)]
        self.wrap = os.path.join(self.root, "etcd-wrap.sh")
        with open(self.wrap, "w") as f:
            f.write(
                "#!/bin/sh\n"
                "# etcd-wrap.sh N ARGS...: note '<pid> <ns since epoch>' of this spawn, then exec etcd.\n"
                "n=$1; shift\n"
                f'echo "$$ $(date +%s%N)" >> {shlex.quote(self.spawns)}/spawned-$n\n'
                f'exec {shlex.quote(tools.etcd)} "$@"\n'
            )
        os.chmod(self.wrap, 0o755)
        cluster = ",".join(f"b{i}=http://127.0.0.1:{self.peer_ports[i]}" for i in range(3))
        self.commands = []
        for i in range(3):
            peer = f"http://127.0.0.1:{self.peer_ports[i]}"
            client = f"http://127.0.0.1:{self.client_ports[i]}"
            self.commands.append(
                [
                    self.wrap, str(i),
                    "--name", f"b{i}",
                    "--data-dir", os.path.join(self.data, f"b{i}.etcd"),
                    "--listen-peer-urls", peer,
                    "--initial-advertise-peer-urls", peer,
                    "--listen-client-urls", client,
                    "--advertise-client-urls", client,
                    "--initial-cluster", cluster,
                    "--initial-cluster-token", f"fild-bench-{os.getpid()}",
                    "--initial-cluster-state", "new",
                    "--auto-compaction-mode", "periodic",
                    "--auto-compaction-retention", "1h",
                    "--heartbeat-interval", "100",
                    "--election-timeout", "1000",
                    "--logger", "zap",
                ]
            )  # fmt: skip
        self.startsecs = 3

    def settings_file(self, i):
        """Member i's settings file, so fild knows the program is an etcd member (its
        `environment=FILD_ETCD_MEMBER=...`); supervisord just passes the variable on."""
        path = os.path.join(self.root, f"b{i}.env")
        cluster = ",".join(f"b{j}=http://127.0.0.1:{self.peer_ports[j]}" for j in range(3))
        with open(path, "w") as f:
            f.write(
                f"name=b{i}\n"
                f"data_dir={os.path.join(self.data, f'b{i}.etcd')}\n"
                f"peer_url=http://127.0.0.1:{self.peer_ports[i]}\n"
                f"client_url=http://127.0.0.1:{self.client_ports[i]}\n"
                f"initial_cluster={cluster}\n"
                f"cluster_token=fild-bench-{os.getpid()}\n"
                "cluster_state=new\n"
                f"etcd_bin={self.tools.etcd}\n"
            )
        return path

    def programs_ini(self, path, members=False):
        with open(path, "w") as f:
            f.write("; generated by bench/bench.py: three etcd members\n")
            for i, n in enumerate(self.names):
                keys = std_keys(self.logs, n, startsecs=self.startsecs)
                if members:
                    keys["environment"] = f"FILD_ETCD_MEMBER={self.settings_file(i)}"
                f.write("\n" + program_block(n, self.commands[i], **keys))
        return path

    def last_spawn(self, i):
        """(pid, ns) of member i's latest spawn, or None."""
        try:
            with open(os.path.join(self.spawns, f"spawned-{i}")) as f:
                lines = f.read().split("\n")
        except OSError:
            return None
        lines = [ln for ln in lines if ln.strip()]
        if not lines:
            return None
        pid, ns = lines[-1].split()
        return int(pid), int(ns)

    def spawn_count(self, i):
        try:
            with open(os.path.join(self.spawns, f"spawned-{i}")) as f:
                return sum(1 for ln in f if ln.strip())
        except OSError:
            return 0

    def calibrate_stamp(self, n=15):
        """ms from posix_spawn of the wrapper to its own stamp (the floor under every respawn figure)."""
        out = []
        env = dict(os.environ)
        for _ in range(n):
            path = os.path.join(self.spawns, "spawned-cal")
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            t = time.time_ns()
            pid = os.posix_spawn(self.wrap, [self.wrap, "cal", "--version"], env)
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            try:
                with open(path) as f:
                    out.append((int(f.read().split()[1]) - t) / 1e6)
            except (OSError, IndexError, ValueError):
                pass
        if not out:
            raise BenchError("cannot calibrate the etcd wrapper's spawn stamp")
        return out

    def all_healthy(self):
        return all(etcd_healthy(p) for p in self.client_ports)

    def member_pids(self):
        out = []
        for i in range(3):
            s = self.last_spawn(i)
            if s and alive(s[0]):
                out.append(s[0])
        return out

    def wipe(self):
        """Only with every member stopped: fresh data and spawn notes for the next round."""
        left = self.member_pids()
        if left:
            raise BenchError(f"etcd members still running before wipe: {left}")
        shutil.rmtree(self.data, ignore_errors=True)
        for i in range(3):
            try:
                os.unlink(os.path.join(self.spawns, f"spawned-{i}"))
            except FileNotFoundError:
                pass

    def wait_members_gone(self, timeout=30.0):
        wait_for(lambda: not self.member_pids(), timeout, "etcd members to exit", 0.02)


class ShellRunner:
    """The limit for cluster-up: the three commands started at once by a plain shell."""

    kind = "shell"

    def __init__(self, cluster):
        self.c = cluster
        self.proc = None

    def start_cluster(self):
        script = " ".join(
            f"{shlex.join(cmd)} >>{shlex.quote(self.c.logs)}/shell-{i}.out 2>&1 &"
            for i, cmd in enumerate(self.c.commands)
        ) + " wait"
        self.proc = spawn(["sh", "-c", script])
        return self.proc

    def stop_cluster(self):
        for pid in self.c.member_pids():
            kill_pid(pid, signal.SIGTERM)
        try:
            self.c.wait_members_gone(20)
        except BenchError:
            for pid in self.c.member_pids():
                kill_pid(pid, signal.SIGKILL)
            self.c.wait_members_gone(10)
        if self.proc is not None:
            stop_popen(self.proc, 10)
            self.proc = None


class RunsvRunner:
    """The limit for respawn: runit's runsv supervising the same command lines."""

    kind = "runsv"

    def __init__(self, cluster):
        self.c = cluster
        self.dirs = []
        self.procs = []
        for i, cmd in enumerate(cluster.commands):
            d = os.path.join(cluster.root, "sv", f"etcd-{i}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "run"), "w") as f:
                f.write(
                    f"#!/bin/sh\nexec {shlex.join(cmd)} >>{shlex.quote(cluster.logs)}/runsv-{i}.stdout.log "
                    f"2>>{shlex.quote(cluster.logs)}/runsv-{i}.stderr.log\n"
                )
            os.chmod(os.path.join(d, "run"), 0o755)
            self.dirs.append(d)

    def start_cluster(self):
        for d in self.dirs:
            shutil.rmtree(os.path.join(d, "supervise"), ignore_errors=True)
            self.procs.append(spawn([self.c.tools.runsv, d]))

    def stop_cluster(self):
        for d in self.dirs:
            ctl = os.path.join(d, "supervise", "control")
            try:
                fd = os.open(ctl, os.O_WRONLY | os.O_NONBLOCK)
                try:
                    os.write(fd, b"dx")  # down (TERM, CONT), then exit once down
                finally:
                    os.close(fd)
            except OSError as e:
                log(f"runsv {d}: cannot write control: {e}")
        try:
            self.c.wait_members_gone(20)
        except BenchError:
            for pid in self.c.member_pids():
                kill_pid(pid, signal.SIGKILL)
            self.c.wait_members_gone(10)
        for p in self.procs:
            stop_popen(p, 10)
        self.procs = []


class DaemonRunner:
    """fild or supervisord running the cluster's programs file."""

    def __init__(self, daemon, cluster):
        self.d = daemon
        self.c = cluster
        self.kind = daemon.kind
        self.cmd = None

    def start_cluster_timed(self):
        """The measured start: the operator's command, in the background."""
        self.cmd = subprocess.Popen(
            self.d.ctl_argv("start", *self.c.names),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self.cmd

    def finish_cmd(self, timeout=60.0):
        if self.cmd is not None:
            try:
                self.cmd.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                kill_pid(self.cmd.pid)
                self.cmd.wait(5)
                raise BenchError(f"{self.kind}: start command took longer than {timeout:g} s")
            self.cmd = None

    def start_cluster(self):
        self.d.api_start(self.c.names)

    def stop_cluster(self):
        self.finish_cmd()
        self.d.api_stop(self.c.names)
        self.c.wait_members_gone(20)


# ---------------------------------------------------------------------------------------
# Figures


def order(runners, rnd):
    """Rotate the order each round so no runner always goes first."""
    k = rnd % len(runners)
    return runners[k:] + runners[:k]


def fig_etcd(b, rows):
    """Figures 1-4: cluster-up, respawn, control round trip, idle RSS/CPU with three members."""
    c = Cluster(b.tools, b.root)
    progs = c.programs_ini(os.path.join(b.root, "etcd", "programs.ini"))
    daemons = [Daemon("fild", b.tools, b.root, progs).start(), Daemon("supervisord", b.tools, b.root, progs).start()]
    fild_r, sup_r = (DaemonRunner(d, c) for d in daemons)
    shell_r, runsv_r = ShellRunner(c), RunsvRunner(c)
    active = [None]

    def stop_active():
        if active[0] is not None:
            r, active[0] = active[0], None
            r.stop_cluster()
        c.wipe()

    try:
        # 1. cluster-up
        if b.want("cluster-up"):
            up = {"fild": [], "supervisord": [], "shell": []}
            cmd_done = {"fild": [], "supervisord": []}
            for rnd in range(b.rounds("cluster-up")):
                for r in order([fild_r, sup_r, shell_r], rnd):
                    stop_active()
                    t0 = time.monotonic()
                    active[0] = r
                    if r.kind == "shell":
                        r.start_cluster()
                    else:
                        r.start_cluster_timed()
                    wait_for(c.all_healthy, 90, f"{r.kind}: three healthy members", 0.01)
                    dt = time.monotonic() - t0
                    up[r.kind].append(dt)
                    if r.kind != "shell":
                        r.finish_cmd()
                        cmd_done[r.kind].append(time.monotonic() - t0)
                    log(f"cluster-up round {rnd + 1} {r.kind}: {dt:.3f} s")
                stop_active()
            rows.append(
                Row(
                    "cluster-up: start command → 3 members healthy", "s", up["fild"], up["supervisord"],
                    up["shell"], "plain shell, all at once",
                    lambda f, lim: f <= 1.1 * lim, "≤ 1.1 × limit",
                    note="fild: `filc start etcd-0 etcd-1 etcd-2`; supervisord: `supervisorctl start etcd-0 etcd-1 etcd-2` "
                    f"(startsecs={c.startsecs}); start command returned after {cell(cmd_done['fild'], 's')} (fild) "
                    f"and {cell(cmd_done['supervisord'], 's')} (supervisord).",
                )
            )  # fmt: skip

        # 2. respawn
        if b.want("respawn"):
            cal = c.calibrate_stamp()
            log(f"respawn: the wrapper's own spawn-to-stamp time is {statistics.median(cal):.2f} ms (median)")
            new_pid = {"fild": [], "supervisord": [], "runsv": []}
            healthy = {"fild": [], "supervisord": [], "runsv": []}
            for rnd in range(b.rounds("respawn")):
                for r in order([fild_r, sup_r, runsv_r], rnd):
                    stop_active()
                    active[0] = r
                    r.start_cluster()
                    wait_for(c.all_healthy, 90, f"{r.kind}: three healthy members", 0.02)
                    i = rnd % 3
                    # Space the kill beyond startsecs: the member must be RUNNING, not STARTING.
                    wait_for(
                        lambda: (s := c.last_spawn(i)) and time.time_ns() - s[1] > (c.startsecs + 0.5) * 1e9,
                        30, "member past startsecs", 0.05,
                    )  # fmt: skip
                    if r.kind in ("fild", "supervisord"):
                        st = r.d.processes()[c.names[i]][0]
                        if st != "RUNNING":
                            raise BenchError(f"{r.kind}: {c.names[i]} is {st} before the kill, not RUNNING")
                    pid, _ = c.last_spawn(i)
                    if not alive(pid):
                        raise BenchError(f"{r.kind}: member {i} pid {pid} is not alive before the kill")
                    n0 = c.spawn_count(i)
                    t_kill = time.time_ns()
                    os.kill(pid, signal.SIGKILL)
                    wait_for(lambda: c.spawn_count(i) > n0, 30, f"{r.kind}: member {i} to respawn", 0.0005)
                    new, t_spawn = c.last_spawn(i)
                    wait_for(lambda: etcd_healthy(c.client_ports[i]), 60, f"{r.kind}: member {i} healthy", 0.005)
                    t_ok = time.time_ns()
                    new_pid[r.kind].append((t_spawn - t_kill) / 1e6)
                    healthy[r.kind].append((t_ok - t_kill) / 1e9)
                    log(
                        f"respawn round {rnd + 1} {r.kind}: member {i} pid {pid} → {new} after "
                        f"{(t_spawn - t_kill) / 1e6:.2f} ms, healthy after {(t_ok - t_kill) / 1e9:.3f} s"
                    )
                stop_active()
            rows.append(
                Row("respawn: SIGKILL → new pid", "ms", new_pid["fild"], new_pid["supervisord"], new_pid["runsv"],
                    "runsv", lambda f, lim: f <= 5.0, "≤ 5 ms",
                    note="a member is SIGKILLed past startsecs; the new pid's time is taken inside the new process "
                    "(the wrapper's `date +%s%N` before `exec etcd`). That includes the wrapper's own start: posix_spawn "
                    f"of the wrapper to its stamp takes {cell(cal, 'ms')} here, for every runner alike.")
            )  # fmt: skip
            rows.append(
                Row("respawn: SIGKILL → member healthy", "s", healthy["fild"], healthy["supervisord"],
                    healthy["runsv"], "runsv",
                    note="bimodal: about 0.1 s when a follower was killed, about 1 s or more when the leader was "
                    "(a new election).")
            )  # fmt: skip

        # 3 + 4. idle RSS/CPU with three members, then the control round trip
        if b.want("idle") or b.want("status"):
            rss = {"fild": [], "supervisord": []}
            cpu = {"fild": [], "supervisord": []}
            wake = {"fild": [], "supervisord": []}
            guard = []
            st_med = {"fild": [], "supervisord": []}
            st_max = {"fild": [], "supervisord": []}
            for rnd in range(b.rounds("idle")):
                for r in order([fild_r, sup_r], rnd):
                    stop_active()
                    active[0] = r
                    r.start_cluster()
                    wait_for(c.all_healthy, 90, f"{r.kind}: three healthy members", 0.02)
                    wait_for(
                        lambda: all((s := c.last_spawn(i)) and time.time_ns() - s[1] > (c.startsecs + 1) * 1e9
                                    for i in range(3)),
                        30, "members past startsecs", 0.1,
                    )  # fmt: skip
                    pid = r.d.pid
                    if b.want("idle"):
                        w = b.idle_window
                        c0, x0, peak = cpu_seconds(pid), ctxt_switches(pid), rss_bytes(pid)
                        end = time.monotonic() + w
                        while time.monotonic() < end:
                            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
                            peak = max(peak, rss_bytes(pid))
                        c1, x1 = cpu_seconds(pid), ctxt_switches(pid)
                        cpu[r.kind].append(c1 - c0)
                        rss[r.kind].append(peak / MB)
                        wake[r.kind].append((x1 - x0) / w)
                        if r.kind == "fild":
                            guard.extend(rss_bytes(g) / MB for g in r.d.guard_pids())
                        log(f"idle round {rnd + 1} {r.kind}: RSS {peak / MB:.1f} MB, CPU {c1 - c0:.2f} s in {w:g} s")
                    if b.want("status"):
                        m, mx = b.hyperfine(r.d.ctl_argv("status"), f"status-3-{r.kind}-{rnd}")
                        st_med[r.kind].append(m)
                        st_max[r.kind].append(mx)
                        log(f"status round {rnd + 1} {r.kind}: median {m:.2f} ms")
                stop_active()
            if b.want("status"):
                rows.append(
                    Row("control round trip: `status` (3 members)", "ms", st_med["fild"], st_med["supervisord"],
                        target=lambda f, lim: f <= 5.0, target_text="≤ 5 ms",
                        note=f"hyperfine -N, {b.hf_runs} runs per round; cells are the medians of the per-round "
                        f"medians; the slowest single run was {fmt(max(st_max['fild'] or [0]), 'ms')} (fild) and "
                        f"{fmt(max(st_max['supervisord'] or [0]), 'ms')} (supervisord).")
                )  # fmt: skip
            if b.want("idle"):
                gnote = f" fild's guard process (`fild --guard`) adds {cell(guard, 'MB')} RSS." if guard else ""
                rows.append(
                    Row("daemon RSS, 3 members", "MB", rss["fild"], rss["supervisord"],
                        target=lambda f, lim: f <= 8.0, target_text="≤ 8 MB",
                        note="peak VmRSS of the daemon's main process over the idle window." + gnote)
                )  # fmt: skip
                rows.append(
                    Row(f"daemon CPU, 3 members idle {b.idle_window:g} s", "cpu-s", cpu["fild"], cpu["supervisord"],
                        target=lambda f, lim: f <= 1.0 / CLK_TCK, target_text=f"≈ 0 (≤ 1 tick = {1 / CLK_TCK:g} s)",
                        note=f"utime+stime from /proc/PID/stat. Wake-ups (voluntary context switches) per second: "
                        f"fild {cell(wake['fild'], 'n')}, supervisord {cell(wake['supervisord'], 'n')}.")
                )  # fmt: skip
    finally:
        try:
            stop_active()
        except Exception as e:  # noqa: BLE001
            log(f"etcd clean-up: {e}")
        for d in daemons:
            d.stop()


def fig_shutdown(b, rows):
    """Figure 5: the daemon's shutdown (SIGTERM) with three healthy members, until it exits."""
    c = Cluster(b.tools, b.root)
    progs = c.programs_ini(os.path.join(b.root, "etcd", "programs-members.ini"), members=True)
    times = {"fild": [], "supervisord": []}
    for rnd in range(b.rounds("shutdown")):
        for kind in order(["fild", "supervisord"], rnd):
            c.wipe()
            d = Daemon(kind, b.tools, b.root, progs).start()
            try:
                d.ctl("start", *c.names)
                wait_for(c.all_healthy, 90, f"{kind}: three healthy members", 0.02)
                time.sleep(2.0)  # past startsecs, a leader settled
                t0 = time.monotonic()
                d.stop()
                dt = time.monotonic() - t0
            finally:
                d.stop()
                c.wait_members_gone()
            times[kind].append(dt)
            log(f"shutdown round {rnd + 1} {kind}: {dt:.3f} s")
    c.wipe()
    rows.append(
        Row(
            "shutdown: SIGTERM → daemon exited (3 healthy members)", "s", times["fild"], times["supervisord"],
            times["supervisord"], "supervisord", lambda f, sup: f <= sup, "≤ supervisord",
            note="the members run as etcd members of fild (environment=FILD_ETCD_MEMBER=...); fild stops the "
            "followers first and the leader last, supervisord all at once",
        )
    )  # fmt: skip


def fig_scale(b, rows):
    """Figure 5: N sleep programs."""
    n = b.nprogs
    root = os.path.join(b.root, "scale")
    logs = os.path.join(root, "logs")
    os.makedirs(logs, exist_ok=True)
    progs = os.path.join(root, "programs.ini")
    names = [f"s{i:04d}" for i in range(n)]
    sleep = shutil.which("sleep") or "/bin/sleep"

    def write(changed=None):
        with open(progs + ".tmp", "w") as f:
            f.write(f"; generated by bench/bench.py: {n} sleep programs\n")
            for nm in names:
                secs = "100001" if nm == changed else "100000"
                f.write(
                    "\n"
                    + program_block(
                        nm, [sleep, secs],
                        **std_keys(logs, nm, autostart=True, startsecs=0, stopwaitsecs=5,
                                   stdout_logfile_maxbytes="1MB", stderr_logfile_maxbytes="1MB"),
                    )
                )  # fmt: skip
        os.replace(progs + ".tmp", progs)

    res = {k: {"fild": [], "supervisord": []} for k in ("auto", "start", "status", "rss", "cpu", "reload", "reload_cmd", "restarted")}
    guard = []
    for rnd in range(b.rounds("scale")):
        for kind in order(["fild", "supervisord"], rnd):
            write()
            d = Daemon(kind, b.tools, root, progs)
            try:
                t0 = time.monotonic()
                d.start(timeout=120)

                def all_running():
                    ps = d.processes()
                    return len(ps) == n and all(s == "RUNNING" for s, _ in ps.values())

                wait_for(all_running, 300, f"{kind}: {n} programs RUNNING after start-up", 0.05)
                res["auto"][kind].append(time.monotonic() - t0)
                d.ctl("stop", "all", timeout=300)
                wait_for(
                    lambda: all(s == "STOPPED" for s, _ in d.processes().values()), 60, f"{kind}: all stopped", 0.05
                )
                t0 = time.monotonic()
                d.ctl("start", "all", timeout=300)
                dt = time.monotonic() - t0
                ps = d.processes()
                bad = [nm for nm, (s, _) in ps.items() if s != "RUNNING"]
                if bad:
                    raise BenchError(f"{kind}: after `start all`, not RUNNING: {bad[:5]}…")
                res["start"][kind].append(dt)
                log(f"scale round {rnd + 1} {kind}: start all {dt:.3f} s")
                m, _ = b.hyperfine(d.ctl_argv("status"), f"status-{n}-{kind}-{rnd}")
                res["status"][kind].append(m)
                time.sleep(1)
                w = b.idle_window
                c0, peak = cpu_seconds(d.pid), rss_bytes(d.pid)
                end = time.monotonic() + w
                while time.monotonic() < end:
                    time.sleep(min(1.0, max(0.0, end - time.monotonic())))
                    peak = max(peak, rss_bytes(d.pid))
                res["cpu"][kind].append(cpu_seconds(d.pid) - c0)
                res["rss"][kind].append(peak / MB)
                if kind == "fild":
                    guard.extend(rss_bytes(g) / MB for g in d.guard_pids())
                # Reload with one program changed.
                before = d.processes()
                write(changed=names[0])
                t0 = time.monotonic()
                d.ctl("reload" if kind == "fild" else "update", timeout=300)
                t_cmd = time.monotonic() - t0
                old = before[names[0]][1]
                wait_for(
                    lambda: (p := d.process(names[0]))[0] == "RUNNING" and p[1] not in (0, old),
                    60, f"{kind}: {names[0]} restarted with its new command", 0.002,
                )  # fmt: skip
                t_done = time.monotonic() - t0
                after = d.processes()
                restarted = sum(1 for nm in names if after.get(nm, ("", 0))[1] != before[nm][1])
                res["reload"][kind].append(t_done)
                res["reload_cmd"][kind].append(t_cmd)
                res["restarted"][kind].append(restarted)
                log(f"scale round {rnd + 1} {kind}: reload {t_done * 1000:.1f} ms, restarted {restarted}")
            finally:
                d.stop(timeout=300)
    tick = 1.0 / CLK_TCK
    rows.append(Row(f"scale: `start all` ({n} programs)", "s", res["start"]["fild"], res["start"]["supervisord"],
                    target=lambda f, lim: f <= 1.0, target_text="≤ 1 s",
                    note=f"`sleep` programs with startsecs=0. Before it, daemon start-up with autostart=true until all "
                    f"{n} were RUNNING took {cell(res['auto']['fild'], 's')} (fild) and "
                    f"{cell(res['auto']['supervisord'], 's')} (supervisord); then `stop all`."))  # fmt: skip
    rows.append(Row(f"scale: `status` ({n} programs)", "ms", res["status"]["fild"], res["status"]["supervisord"],
                    target=lambda f, lim: f <= 20.0, target_text="≤ 20 ms"))  # fmt: skip
    gnote = f"; fild's guard adds {cell(guard, 'MB')}" if guard else ""
    rows.append(Row(f"scale: daemon RSS ({n} programs)", "MB", res["rss"]["fild"], res["rss"]["supervisord"],
                    target=lambda f, lim: f <= 30.0, target_text="≤ 30 MB",
                    note="peak VmRSS of the daemon's main process" + gnote + "."))  # fmt: skip
    rows.append(Row(f"scale: daemon CPU, idle {b.idle_window:g} s ({n} programs)", "cpu-s", res["cpu"]["fild"],
                    res["cpu"]["supervisord"], target=lambda f, lim: f <= tick,
                    target_text=f"≈ 0 (≤ {tick:g} s)"))  # fmt: skip
    rows.append(Row("scale: reload, 1 program changed", "ms", [x * 1000 for x in res["reload"]["fild"]],
                    [x * 1000 for x in res["reload"]["supervisord"]], target=lambda f, lim: f <= 100.0,
                    target_text="≤ 100 ms",
                    note="`filc reload` / `supervisorctl update` after `sleep 100000` → `sleep 100001` in one program, "
                    "until that program is RUNNING with a new pid; the command itself returned after "
                    f"{cell([x * 1000 for x in res['reload_cmd']['fild']], 'ms')} (fild) and "
                    f"{cell([x * 1000 for x in res['reload_cmd']['supervisord']], 'ms')} (supervisord)."))  # fmt: skip
    rows.append(Row("scale: programs restarted by that reload", "n", res["restarted"]["fild"],
                    res["restarted"]["supervisord"], target=lambda f, lim: f == 1, target_text="exactly 1"))  # fmt: skip


def fig_logs(b, rows):
    """Figure 6: log capture of a fast writer, against the writer redirected straight to a file."""
    root = os.path.join(b.root, "logcap")
    os.makedirs(root, exist_ok=True)
    total_lines = b.log_bytes // 100
    total = total_lines * 100
    line = ("2024-05-01T12:00:00.000000Z\tINFO\tetcdserver/server.go:2044\tpublished local member to cluster"
            " through raft\n")  # fmt: skip
    line = line[:99].ljust(99, ".") + "\n"
    assert len(line) == 100
    wpl = os.path.join(root, "writer.pl")
    with open(wpl, "w") as f:
        f.write(
            "# writer.pl BYTES CHUNK: write BYTES of 100-byte log lines to stdout, CHUNK bytes per write(2).\n"
            "use strict;\n"
            "my ($bytes, $chunk) = @ARGV;\n"
            f"my $line = \"{line[:-1]}\\n\";\n"
            "my $buf = $line x ($chunk / 100);\n"
            "my $left = $bytes;\n"
            "while ($left > 0) {\n"
            "    my $n = $left < length($buf) ? $left : length($buf);\n"
            "    my $off = 0;\n"
            "    while ($off < $n) { my $w = syswrite(STDOUT, $buf, $n - $off, $off); die \"write: $!\" unless defined $w; $off += $w; }\n"
            "    $left -= $n;\n"
            "}\n"
        )
    wsh = os.path.join(root, "writer.sh")
    with open(wsh, "w") as f:
        f.write(
            "#!/bin/sh\n# writer.sh STAMP BYTES CHUNK: note the start time, then write.\n"
            f'date +%s%N > "$1"\nexec {shlex.quote(b.tools.perl)} {shlex.quote(wpl)} "$2" "$3"\n'
        )
    os.chmod(wsh, 0o755)
    stamp = os.path.join(root, "started")
    out = os.path.join(root, "writer.out")
    progs = os.path.join(root, "programs.ini")

    for mode, chunk in (("line", 100), ("bulk", 65536)):
        cmd = [wsh, stamp, str(total), str(chunk)]
        with open(progs, "w") as f:
            f.write("; generated by bench/bench.py: one log writer\n\n")
            f.write(program_block(
                "writer", cmd,
                **std_keys(root, "writer", startsecs=0, autorestart=False, stdout_logfile=out,
                           stdout_logfile_maxbytes=0, stdout_logfile_backups=0,
                           stderr_logfile=os.path.join(root, "writer.err"), stderr_logfile_maxbytes=0,
                           stderr_logfile_backups=0),
            ))  # fmt: skip
        times = {"fild": [], "supervisord": [], "direct": []}
        cpus = {"fild": [], "supervisord": []}

        def done():
            try:
                return os.path.getsize(out) >= total and os.path.exists(stamp)
            except OSError:
                return False

        def clean():
            for p in (stamp, out, os.path.join(root, "writer.err")):
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass

        limit_s = max(120.0, total / (5 * MB))
        for rnd in range(b.rounds("logs")):
            for kind in order(["fild", "supervisord", "direct"], rnd):
                clean()
                if kind == "direct":
                    p = spawn(["sh", "-c", f"{shlex.join(cmd)} > {shlex.quote(out)}"])
                    try:
                        wait_for(done, limit_s, f"direct writer to write {total} bytes", 0.002)
                        t_end = time.time_ns()
                    finally:
                        stop_popen(p, 10)
                else:
                    d = Daemon(kind, b.tools, root, progs)
                    try:
                        d.start()
                        c0 = cpu_seconds(d.pid)
                        d.ctl("start", "writer", check=False)
                        wait_for(done, limit_s, f"{kind}: log file to hold {total} bytes", 0.002)
                        t_end = time.time_ns()
                        cpus[kind].append(cpu_seconds(d.pid) - c0)
                    finally:
                        d.stop()
                with open(stamp) as f:
                    t_start = int(f.read().strip())
                size = os.path.getsize(out)
                if size != total:
                    raise BenchError(f"{kind}: log holds {size} bytes, expected {total}")
                times[kind].append((t_end - t_start) / 1e9)
                log(f"logs {mode} round {rnd + 1} {kind}: {(t_end - t_start) / 1e9:.3f} s")
        clean()
        mb = total / 1e6
        what = "100-byte lines, one write(2) each" if mode == "line" else "64 KiB writes of 100-byte lines"
        rows.append(Row(f"log capture {mb:g} MB ({mode}): time until in the file", "s", times["fild"],
                        times["supervisord"], times["direct"], "writer > file",
                        target=lambda f, lim: lim / f >= 0.9, target_text="speed ≥ 90 % of limit",
                        note=f"{what}; timed from the writer's own start stamp; stdout_logfile_maxbytes=0. "
                        f"Speeds: fild {mb / statistics.median(times['fild']):.0f} MB/s, supervisord "
                        f"{mb / statistics.median(times['supervisord']):.0f} MB/s, direct "
                        f"{mb / statistics.median(times['direct']):.0f} MB/s."))  # fmt: skip
        rows.append(Row(f"log capture {mb:g} MB ({mode}): daemon CPU", "cpu-s", cpus["fild"], cpus["supervisord"]))


def fig_crash(b, rows):
    """Figure 7: a program that exits at once, startsecs=0, autorestart=true."""
    root = os.path.join(b.root, "crash")
    os.makedirs(root, exist_ok=True)
    spawns = os.path.join(root, "spawns")
    csh = os.path.join(root, "crash.sh")
    with open(csh, "w") as f:
        f.write('#!/bin/sh\n# crash.sh FILE: note a spawn, then fail at once.\necho x >> "$1"\nexit 1\n')
    os.chmod(csh, 0o755)
    progs = os.path.join(root, "programs.ini")
    with open(progs, "w") as f:
        f.write("; generated by bench/bench.py: a crash loop\n\n")
        f.write(program_block("crash", [csh, spawns], **std_keys(root, "crash", startsecs=0, autorestart=True)))
    w = b.crash_window
    restarts = {"fild": [], "supervisord": []}
    cpu = {"fild": [], "supervisord": []}
    for rnd in range(b.rounds("crash")):
        for kind in order(["fild", "supervisord"], rnd):
            try:
                os.unlink(spawns)
            except FileNotFoundError:
                pass
            d = Daemon(kind, b.tools, root, progs)
            try:
                d.start()
                c0 = cpu_seconds(d.pid)
                t0 = time.monotonic()
                d.ctl("start", "crash", check=False, timeout=60)
                time.sleep(max(0.0, w - (time.monotonic() - t0)))
                c1 = cpu_seconds(d.pid)
                with open(spawns) as f:
                    n = sum(1 for _ in f)
                d.ctl("stop", "crash", check=False, timeout=60)
            finally:
                d.stop()
            restarts[kind].append(max(0, n - 1))
            cpu[kind].append(100.0 * (c1 - c0) / w)
            log(f"crash round {rnd + 1} {kind}: {n - 1} restarts, daemon CPU {100.0 * (c1 - c0) / w:.3f} %")
    rows.append(Row(f"crash loop {w:g} s: restarts", "n", restarts["fild"], restarts["supervisord"],
                    note="`sh` script that exits 1 at once; startsecs=0, autorestart=true, startretries=3. fild backs "
                    "off quick exits (1, 2, 4 … 60 s); supervisord takes a startsecs=0 process as started and restarts "
                    "it without backoff, paced by its main loop."))  # fmt: skip
    rows.append(Row(f"crash loop {w:g} s: daemon CPU", "%", cpu["fild"], cpu["supervisord"],
                    target=lambda f, lim: f < 0.5, target_text="< 0.5 %",
                    note="the daemon's utime+stime over the window, as a percentage of one core."))  # fmt: skip


# ---------------------------------------------------------------------------------------
# Driver



def fig_scrape(b, rows):
    """fild's CPU per `GET /metrics` beside `filc status --json` against the same fild, at 3
    and N programs. supervisord serves no Prometheus metrics: its column stays empty."""
    sleep = shutil.which("sleep") or "/bin/sleep"
    for n in (3, b.nprogs):
        root = os.path.join(b.root, f"scrape-{n}")
        logs = os.path.join(root, "logs")
        os.makedirs(logs, exist_ok=True)
        progs = os.path.join(root, "programs.ini")
        with open(progs, "w") as f:
            f.write(f"; generated by bench/bench.py: {n} sleep programs\n")
            for i in range(n):
                nm = f"m{i:04d}"
                f.write("\n" + program_block(nm, [sleep, "100000"],
                                              **std_keys(logs, nm, autostart=True, startsecs=0, stopwaitsecs=5)))  # fmt: skip
        # Many requests at 3 programs, where one costs a fraction of a clock tick.
        k = b.scrape_requests * (10 if n <= 3 else 1)
        res = {"metrics": [], "status": [], "wall": []}
        size = 0
        d = Daemon("fild", b.tools, root, progs)
        try:
            d.start(timeout=120)
            wait_for(lambda: sum(1 for s, _ in d.processes().values() if s == "RUNNING") == n,
                     300, f"fild: {n} programs RUNNING", 0.05)  # fmt: skip
            status_argv = d.ctl_argv("status", "--json")
            for rnd in range(b.rounds("scrape")):
                for what in order(["metrics", "status"], rnd):
                    c0 = cpu_seconds(d.pid)
                    t0 = time.monotonic()
                    for _ in range(k):
                        if what == "metrics":
                            c = UnixHTTPConnection(d.sock, 30)
                            try:
                                c.request("GET", "/metrics")
                                r = c.getresponse()
                                body = r.read()
                                if r.status != 200:
                                    raise BenchError(f"GET /metrics: HTTP {r.status}: {body[:300]!r}")
                                size = len(body)
                            finally:
                                c.close()
                        else:
                            r = subprocess.run(status_argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                               stdin=subprocess.DEVNULL, timeout=60)  # fmt: skip
                            if r.returncode != 0:
                                raise BenchError(f"filc status --json exited {r.returncode}: {r.stderr[-500:]!r}")
                    wall = (time.monotonic() - t0) / k * 1000
                    cpu = (cpu_seconds(d.pid) - c0) / k * 1000
                    res[what].append(cpu)
                    if what == "metrics":
                        res["wall"].append(wall)
                    log(f"scrape round {rnd + 1}, {n} programs, {what}: fild CPU {cpu:.3f} ms per request, wall {wall:.2f} ms")
        finally:
            d.stop(timeout=300)
        rows.append(Row(f"scrape: fild CPU per `GET /metrics` ({n} programs)", "ms", res["metrics"], [],
                        limit=res["status"], limit_label="`filc status --json`, same fild",
                        target=(lambda f, lim: f <= 50.0) if n >= 1000 else None,
                        target_text="≤ 50 ms" if n >= 1000 else "",
                        note=f"{k} scrapes per round, one connection each (as Prometheus makes them), "
                        f"{size / 1000:.0f} kB of text each; utime+stime of fild over the round divided by {k}; "
                        f"a scrape's wall time {cell(res['wall'], 'ms')}. The limit column is fild's CPU per "
                        f"`filc status --json` run against the same fild in the same rounds (alternating); "
                        f"supervisord serves no Prometheus metrics."))  # fmt: skip

FIGURES = ["cluster-up", "respawn", "status", "idle", "shutdown", "scale", "scrape", "logs", "crash"]


class Bench:
    def __init__(self, args, tools, root):
        self.args = args
        self.tools = tools
        self.root = root
        smoke = args.smoke
        self.idle_window = args.idle_secs if args.idle_secs is not None else (3.0 if smoke else 60.0)
        self.crash_window = args.crash_secs if args.crash_secs is not None else (5.0 if smoke else 60.0)
        self.nprogs = args.programs if args.programs is not None else (50 if smoke else 1000)
        self.log_bytes = int((args.log_mb if args.log_mb is not None else (5 if smoke else 200)) * 1e6)
        self.scrape_requests = args.scrape_requests or (20 if smoke else 200)
        self.hf_runs = args.hyperfine_runs if args.hyperfine_runs is not None else (3 if smoke else 30)
        defaults = {"cluster-up": 5, "respawn": 10, "idle": 2, "shutdown": 5, "scale": 2, "scrape": 3, "logs": 3, "crash": 1}
        self.round_counts = {k: (1 if smoke else (args.rounds or v)) for k, v in defaults.items()}
        self.only = set(args.only.split(",")) if args.only else set(FIGURES)

    def want(self, fig):
        return fig in self.only

    def rounds(self, fig):
        return self.round_counts[fig]

    def hyperfine(self, argv, tag):
        """Median and max of argv's wall time in ms, by hyperfine (no shell)."""
        out = os.path.join(self.root, f"hf-{tag}.json")
        cmd = [
            self.tools.hyperfine, "-N", "--style", "none", "-i",
            "--warmup", str(min(5, self.hf_runs)), "--runs", str(self.hf_runs),
            "--export-json", out, shlex.join(argv),
        ]  # fmt: skip
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise BenchError("hyperfine took longer than 600 s")
        if r.returncode != 0:
            raise BenchError(f"hyperfine failed ({r.returncode}): {r.stderr[-1500:]}")
        with open(out) as f:
            res = json.load(f)["results"][0]
        return res["median"] * 1000, res["max"] * 1000


def sh_out(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (r.stdout or r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def tree_dirty():
    """Whether the sources the binaries come from differ from HEAD (read-only git query)."""
    try:
        r = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"],
                           capture_output=True, text=True, timeout=30)
        return bool(r.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return False


def binary_time(path):
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(path)))
    except OSError:
        return "?"


def machine_description(tools):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    except OSError:
        pass
    etcd_v = re.search(r"etcd Version: (\S+)", sh_out([tools.etcd, "--version"]))
    soft, hard = __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE)
    return [
        ("date", time.strftime("%Y-%m-%d %H:%M:%S %Z")),
        ("nproc", str(os.cpu_count())),
        ("CPU", cpu),
        ("memory", mem),
        ("kernel", platform.release()),
        ("open files (soft/hard)", f"{soft}/{hard}"),
        ("etcd", etcd_v.group(1) if etcd_v else "?"),
        ("supervisord", sh_out([tools.supervisord, "--version"])),
        ("fild", f"{sh_out([tools.fild, '--version'])} ({tools.fild}, built {binary_time(tools.fild)})"),
        ("repository HEAD", sh_out(["git", "-C", REPO, "log", "-1", "--format=%h %cd %s", "--date=format:%Y-%m-%d %H:%M"])
         + (" (src/ or Cargo files differ from HEAD)" if tree_dirty() else "")),
        ("hyperfine", sh_out([tools.hyperfine, "--version"])),
        ("runit", sh_out(["dpkg-query", "-W", "-f=${Version}", "runit"])),
        ("python", platform.python_version()),
        ("load average at start", " ".join(f"{x:.2f}" for x in os.getloadavg())),
    ]


def main():
    ap = argparse.ArgumentParser(description="fild vs supervisord benchmark (see bench/README.md)")
    ap.add_argument("--smoke", action="store_true", help="one round of each figure, short windows, small sizes")
    ap.add_argument("--rounds", type=int, help="rounds for every figure (default: 5 cluster-up, 10 respawn, "
                    "2 idle/status, 2 scale, 3 scrape, 3 logs, 1 crash loop; 1 in smoke mode)")  # fmt: skip
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results.md"), help="markdown output file")
    ap.add_argument("--only", help="comma-separated subset of: " + ",".join(FIGURES))
    ap.add_argument("--idle-secs", type=float, help="idle window (default 60, smoke 3)")
    ap.add_argument("--crash-secs", type=float, help="crash-loop window (default 60, smoke 5)")
    ap.add_argument("--programs", type=int, help="programs for the scale figure (default 1000, smoke 50)")
    ap.add_argument("--log-mb", type=float, help="log capture size in MB (default 200, smoke 5)")
    ap.add_argument("--scrape-requests", type=int, help="requests per round of the scrape figure at N programs "
                    "(10 times as many at 3; default 200, smoke 20)")  # fmt: skip
    ap.add_argument("--hyperfine-runs", type=int, help="hyperfine runs per status measurement (default 30, smoke 3)")
    ap.add_argument("--workdir", help="parent of the scratch dir (default /dev/shm)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir (configs, logs) for inspection")
    ap.add_argument("--check-targets", action="store_true", help="exit 3 when a target is missed")
    args = ap.parse_args()
    if args.only:
        bad = set(args.only.split(",")) - set(FIGURES)
        if bad:
            ap.error(f"unknown figures: {','.join(sorted(bad))}")

    set_child_subreaper()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    tools = Tools(args)
    parent = args.workdir or ("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir())
    root = tempfile.mkdtemp(prefix="fild-bench-", dir=parent)
    b = Bench(args, tools, root)
    machine = machine_description(tools)
    settings = [
        ("mode", "smoke" if args.smoke else "full"),
        ("rounds", ", ".join(f"{k} {v}" for k, v in b.round_counts.items())),
        ("idle window", f"{b.idle_window:g} s"),
        ("crash-loop window", f"{b.crash_window:g} s"),
        ("scale programs", str(b.nprogs)),
        ("log capture size", f"{b.log_bytes / 1e6:g} MB"),
        ("hyperfine runs per measurement", str(b.hf_runs)),
        ("scratch dir", root),
    ]
    log(f"scratch dir {root}; figures: {','.join(f for f in FIGURES if b.want(f))}")
    rows = []
    rc = 0
    t_start = time.monotonic()
    try:
        if b.want("cluster-up") or b.want("respawn") or b.want("status") or b.want("idle"):
            fig_etcd(b, rows)
        if b.want("shutdown"):
            fig_shutdown(b, rows)
        if b.want("scale"):
            fig_scale(b, rows)
        if b.want("scrape"):
            fig_scrape(b, rows)
        if b.want("logs"):
            fig_logs(b, rows)
        if b.want("crash"):
            fig_crash(b, rows)
    except BenchError as e:
        log(f"error: {e}")
        rc = 1
    except KeyboardInterrupt as e:
        log(f"interrupted ({e})")
        rc = 130
    finally:
        cleanup_all()
        if not args.keep and rc == 0:
            shutil.rmtree(root, ignore_errors=True)
        elif rc != 0:
            log(f"scratch dir kept for inspection: {root}")
    machine.append(("load average at end", " ".join(f"{x:.2f}" for x in os.getloadavg())))
    settings.append(("wall time", f"{time.monotonic() - t_start:.0f} s"))
    text = render(rows, machine, settings)
    if rc != 0:
        text += "\n**The run failed before finishing; the table holds only the figures completed.**\n"
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    log(f"wrote {args.out}")
    if rc == 0 and args.check_targets and any(r.met() is False for r in rows):
        rc = 3
    return rc


if __name__ == "__main__":
    sys.exit(main())

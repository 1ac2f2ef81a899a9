"""The grader's sandbox: each submission runs in a throw-away Linux container.

:class:`Sandbox` runs one notebook with the project's executor (:mod:`mmbook.execute`,
cell by cell) inside `bubblewrap <https://github.com/containers/bubblewrap>`_ (``bwrap``,
Debian's package ``bubblewrap``; ``make sandbox`` installs it). What the notebook sees:

* a root file system of its own: the system (``/usr``), Python and its packages, read-only;
  a **read-only snapshot of the mmbook package** (the grader's copy, at ``/opt/mmbook``),
  the data (``$MMBOOK_DATA``, read-only, at ``/data``), its own notebook, and empty
  size-capped ``/tmp``, ``/home/student`` and ``/out``. Not the teacher's book, not the
  repository, not the other submissions, not the grades;
* its own PID, network (none: loopback only), IPC and UTS namespaces: ``/proc`` shows its
  processes only, and nothing else on the machine can be signalled or traced;
* an unprivileged user: when the grader runs as root, job ``j`` runs as uid
  ``61000 + 64 b + j``, where ``b`` is a block of uids this grader holds alone (a lock file
  under the system's temporary folder), so that two graders running at once never share a
  uid, nor its ``RLIMIT_NPROC`` count (no capabilities, ``no_new_privs``); otherwise a
  user namespace maps the grader's user;
* limits: processes (``pids`` cgroup, and ``RLIMIT_NPROC`` for the dedicated uid), memory
  (``memory`` cgroup, v1 or v2, where the grader may create one; else ``RLIMIT_AS``), file
  size, open files, size-capped temporary file systems, and a wall-clock limit.

When the notebook is done (or out of time) a root shell inside the sandbox kills every
process in it (``kill -KILL -1``), then streams ``/out`` to the grader as a tar archive;
the archive is all that leaves the sandbox, and the grader reads only regular files with
expected names from it, as untrusted data. When the sandbox's first process exits, the
kernel kills whatever is left in its PID namespace; the cgroup is emptied and removed.

:func:`sandbox_problem` says what is missing on a machine where this cannot run.
``unsafe=True`` runs the same child without any of it (``--unsafe``: only for trusted
notebooks).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .execute import runner_command

__all__ = ["Limits", "SandboxResult", "Sandbox", "SandboxUnavailable", "sandbox_problem"]

UID_BASE = 61000
_NAME = re.compile(r"\A(executed\.ipynb|runner\.json|runner\.err|answers/[A-Za-z0-9_.:-]+/"
                   r"(answers\.json|a\d{1,6}\.npy))\Z")


@dataclass
class Limits:
    """What one sandboxed notebook may use."""

    memory: int = 4 << 30          # bytes of memory (cgroup), or of address space (rlimit)
    processes: int = 256           # processes and threads
    tmp_size: int = 512 << 20      # bytes in /tmp, and in /home/student
    out_size: int = 64 << 20       # bytes the notebook's results may take (/out)
    open_files: int = 1024
    output_limit: int = 200_000    # bytes of output kept per cell in the executed copy


UID_BLOCK = 64  # uids per grader: its jobs' slots


def _claim_uid_block(blocks: int = 256):
    """``(open lock file, first uid)`` of a block of ``UID_BLOCK`` uids no other grader on
    this machine holds now (an exclusive ``flock`` on a file per block, released when the
    file is closed or the process ends, even killed). Only root switches to these uids;
    any other user runs the jobs as itself in a user namespace and claims nothing."""
    import fcntl

    if os.geteuid() != 0:
        return None, UID_BASE

    folder = Path(tempfile.gettempdir())
    for block in range(blocks):
        f = open(folder / f"mmbook-sandbox-uids-{block}.lock", "a")  # noqa: SIM115 - held
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        return f, UID_BASE + UID_BLOCK * block
    raise SandboxUnavailable(f"all {blocks} blocks of grader uids are held by other graders")


@dataclass
class SandboxResult:
    """What came out of one sandboxed run (all of it untrusted data).

    Attributes:
        files: ``{name: bytes}``: ``executed.ipynb``, ``runner.json``, ``runner.err`` and
            ``answers/<label>/...``.
        seconds: wall-clock time of the run.
        error: why the run gave nothing usable, or ``None``.
    """

    files: dict = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run on this machine (the message says what is missing)."""


def _bwrap() -> str | None:
    return shutil.which("bwrap")


_PROBLEM: dict = {}


def sandbox_problem() -> str | None:
    """``None`` when the sandbox works here; else what is missing, in words."""
    if "value" in _PROBLEM:
        return _PROBLEM["value"]
    problem = None
    if not sys.platform.startswith("linux"):
        problem = "the sandbox needs Linux (namespaces and bubblewrap)"
    elif _bwrap() is None:
        problem = ("bubblewrap is not installed: run `make sandbox` (or, as root, "
                   "`apt-get install bubblewrap`)")
    else:
        tools = ["sh", "timeout", "prlimit", "tar", "kill", "sleep"]
        tools += ["setpriv"] if os.geteuid() == 0 else []
        missing = [t for t in tools if shutil.which(t) is None]
        if missing:
            problem = f"the sandbox needs {', '.join(missing)} (coreutils, util-linux, tar)"
        else:
            probe = subprocess.run([_bwrap(), *_namespaces(), "--ro-bind", "/", "/", "--proc",
                                    "/proc", "--dev", "/dev", "--", "true"],
                                   capture_output=True, text=True)
            if probe.returncode != 0:
                problem = ("bubblewrap cannot create its namespaces here ("
                           f"{probe.stderr.strip()[:300]}): run the grader as root, or allow "
                           "unprivileged user namespaces (sysctl kernel.unprivileged_userns_"
                           "clone=1); in a container, allow the unshare system call")
    _PROBLEM["value"] = problem
    return problem


def _namespaces() -> list:
    spaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
              "--unshare-cgroup-try"]
    return spaces if os.geteuid() == 0 else ["--unshare-user", *spaces]


# ----------------------------------------------------------------------------- cgroups
class _Cgroup:
    """A memory + pids cgroup for one run (v2, or v1's two hierarchies), when allowed."""

    def __init__(self, name: str, limits: Limits):
        self.dirs: list = []
        try:
            self._create(name, limits)
        except OSError:
            self.remove()
            self.dirs = []

    @staticmethod
    def _own(controller: str) -> str | None:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(",") or (controller == "" and controllers == ""):
                return path
        return None

    def _create(self, name: str, limits: Limits) -> None:
        root = Path("/sys/fs/cgroup")
        if (root / "cgroup.controllers").exists():  # v2
            own = self._own("")
            if own is None:
                return
            parent = root / own.lstrip("/")
            if not {"memory", "pids"} <= set((parent / "cgroup.subtree_control").read_text()
                                            .split()):
                return
            d = parent / name
            d.mkdir()
            self.dirs.append(d)
            (d / "memory.max").write_text(str(limits.memory))
            (d / "memory.swap.max").write_text("0") if (d / "memory.swap.max").exists() \
                else None
            (d / "pids.max").write_text(str(limits.processes))
            return
        for controller, settings in (("memory", {"memory.limit_in_bytes": limits.memory}),
                                     ("pids", {"pids.max": limits.processes})):
            own = self._own(controller)
            base = root / controller
            if own is None or not base.is_dir():
                raise OSError(f"no {controller} cgroup")
            d = base / own.lstrip("/") / name
            d.mkdir()
            self.dirs.append(d)
            for key, value in settings.items():
                (d / key).write_text(str(value))
            swap = d / "memory.memsw.limit_in_bytes"
            if controller == "memory" and swap.exists():
                try:
                    swap.write_text(str(limits.memory))
                except OSError:
                    pass

    @property
    def procs(self) -> list:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def kill(self) -> None:
        """SIGKILL every process in the cgroup, until none is left (at most 5 s)."""
        deadline = time.monotonic() + 5
        while self.dirs and time.monotonic() < deadline:
            pids = set()
            for d in self.dirs:
                try:
                    pids |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
                except OSError:
                    pass
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.05)

    def remove(self) -> None:
        self.kill()
        for d in reversed(self.dirs):
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def cgroups_available() -> bool:
    """Can this process create the per-run cgroups (memory and processes caps)?"""
    group = _Cgroup(f"mmbook-probe-{os.getpid()}", Limits())
    ok = bool(group.dirs)
    group.remove()
    return ok


# ----------------------------------------------------------------------------- the sandbox
_SCRIPT = r"""
limit="$1"; shift
timeout -s KILL "$limit" "$@" >/out/runner.json 2>/out/runner.err </dev/null
kill -KILL -1 2>/dev/null
sleep 0.3
kill -KILL -1 2>/dev/null
cd /out && exec tar -cf - .
"""


class Sandbox:
    """Runs notebooks in the sandbox described in the module docstring.

    Args:
        package_dir: the mmbook package to snapshot (default: this one).
        data_dir: the data folder made visible read-only (default ``$MMBOOK_DATA``).
        limits: see :class:`Limits`.
        unsafe: run without any isolation (trusted notebooks only).
        env: extra environment variables for the kernel (``MMBOOK_SEED``).

    Raises:
        SandboxUnavailable: the sandbox cannot run here and ``unsafe`` is False.
    """

    def __init__(self, package_dir=None, data_dir=None, limits: Limits | None = None,
                 unsafe: bool = False, env: dict | None = None):
        self.unsafe = unsafe
        if not unsafe and sandbox_problem() is not None:
            raise SandboxUnavailable(sandbox_problem())
        self.limits = limits or Limits()
        self.env = dict(env or {})
        data = data_dir or os.environ.get("MMBOOK_DATA")
        self.data_dir = Path(data) if data and Path(data).is_dir() else None
        self._tmp = tempfile.TemporaryDirectory(prefix="mmbook-sandbox-")
        self.root = Path(self._tmp.name)
        os.chmod(self.root, 0o755)
        self.package = self._snapshot(Path(package_dir or Path(__file__).parent))
        self.use_cgroups = (not unsafe) and cgroups_available()
        self._uid_lock, self.uid_base = _claim_uid_block()

    def close(self) -> None:
        self._tmp.cleanup()
        if self._uid_lock is not None:
            self._uid_lock.close()  # releases the block
            self._uid_lock = None

    def _uid(self, slot: int) -> int:
        if not 0 <= slot < UID_BLOCK:
            raise ValueError(f"slot must be in [0, {UID_BLOCK}) (at most {UID_BLOCK} jobs), "
                             f"got {slot}")
        return self.uid_base + slot

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _snapshot(self, package: Path) -> Path:
        """A read-only copy of the package, compiled (the kernel cannot write ``.pyc``)."""
        import compileall

        dest = self.root / "pkg"
        shutil.copytree(package, dest / "mmbook",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        compileall.compile_dir(str(dest / "mmbook"), quiet=1)
        for path in [dest, *dest.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        return dest

    # ------------------------------------------------------------------ the command
    def _binds(self) -> list:
        args = ["--perms", "0755", "--dir", "/usr", "--ro-bind", "/usr", "/usr"]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        args += ["--perms", "0755", "--dir", "/etc"]
        for f in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives"):
            if os.path.exists(f):
                args += ["--ro-bind", f, f]
        roots = []
        for prefix in {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix),
                       sys.prefix}:
            if not prefix.startswith("/usr/") and prefix != "/usr":
                roots.append(prefix)
        for prefix in sorted(set(roots)):
            args += self._parents(prefix) + ["--ro-bind", prefix, prefix]
        return args

    @staticmethod
    def _parents(path: str) -> list:
        """``--dir`` for each parent of ``path`` (bwrap would create them mode 0700)."""
        parts, out = Path(path).parts[1:-1], []
        for i in range(len(parts)):
            out += ["--perms", "0755", "--dir", "/" + "/".join(parts[:i + 1])]
        return out

    def _command(self, job: Path, slot: int, cell_timeout: int, notebook_timeout: float,
                 stop_after: int | None) -> list:
        lim = self.limits
        runner = runner_command("/home/student/submission.ipynb", "/out/executed.ipynb",
                                cell_timeout=cell_timeout, allow_errors=True,
                                cwd="/home/student", after_cells_file="/grader/after.json",
                                output_limit=lim.output_limit, stop_after=stop_after,
                                sandboxed=True)
        limits = ["prlimit", f"--nproc={lim.processes}", f"--nofile={lim.open_files}",
                  f"--fsize={lim.out_size}", "--core=0"]
        if not self.use_cgroups:
            limits.append(f"--as={lim.memory}")
        limits.append("--")
        user = []
        if os.geteuid() == 0:
            uid = self._uid(slot)
            user = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
               "HOME": "/home/student", "USER": "student", "LOGNAME": "student",
               "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONUTF8": "1",
               "PYTHONIOENCODING": "utf-8", "PYTHONPATH": "/opt/mmbook",
               "PYTHONDONTWRITEBYTECODE": "1", "MMBOOK_CACHE": "/tmp/mmbook-cache",
               "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/mpl", "IPYTHONDIR": "/tmp/ipython",
               "JUPYTER_RUNTIME_DIR": "/tmp/jupyter", "JUPYTER_PLATFORM_DIRS": "1",
               "TMPDIR": "/tmp", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
               **self.env}
        if self.data_dir is not None:
            env["MMBOOK_DATA"] = "/data"
        bwrap = [_bwrap(), *_namespaces(), "--die-with-parent", "--new-session",
                 *self._binds(),
                 "--ro-bind", str(job / "passwd"), "/etc/passwd",
                 "--ro-bind", str(job / "group"), "/etc/group",
                 "--perms", "0755", "--dir", "/opt",
                 "--ro-bind", str(self.package), "/opt/mmbook",
                 "--perms", "0755", "--dir", "/grader",
                 "--ro-bind", str(job / "plan.json"), "/grader/plan.json",
                 "--ro-bind", str(job / "after.json"), "/grader/after.json",
                 "--proc", "/proc", "--dev", "/dev",
                 "--perms", "01777", "--size", str(lim.tmp_size), "--tmpfs", "/dev/shm",
                 "--perms", "01777", "--size", str(lim.tmp_size), "--tmpfs", "/tmp",
                 "--perms", "0755", "--dir", "/home",
                 "--perms", "0777", "--size", str(lim.tmp_size), "--tmpfs", "/home/student",
                 "--ro-bind", str(job / "submission.ipynb"), "/home/student/submission.ipynb",
                 "--perms", "0777", "--size", str(lim.out_size), "--tmpfs", "/out",
                 "--chdir", "/home/student", "--clearenv"]
        if self.data_dir is not None:
            bwrap += ["--ro-bind", str(self.data_dir), "/data"]
        for key, value in env.items():
            bwrap += ["--setenv", key, value]
        return [*bwrap, "--", "/bin/sh", "-c", _SCRIPT, "sh", str(int(notebook_timeout)),
                *limits, *user, *runner]

    # ------------------------------------------------------------------ running
    def run(self, notebook: bytes, plan: str, after_cells: dict, *, slot: int = 0,
            cell_timeout: int = 120, notebook_timeout: float = 900,
            stop_after: int | None = None) -> SandboxResult:
        """Run one notebook; see the module docstring.

        Args:
            notebook: the submission (bytes of the ``.ipynb``).
            plan: the grader's plan (JSON text), readable in the sandbox at
                ``/grader/plan.json``.
            after_cells: ``{cell index: code}`` run after those cells (the answers are
                written under ``/out/answers``).
            slot: the job number (its uid when the grader runs as root).
            cell_timeout, notebook_timeout: seconds.
            stop_after: the last cell to run.
        """
        import json

        start = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            job = Path(tmp)
            os.chmod(job, 0o755)
            (job / "submission.ipynb").write_bytes(notebook)
            (job / "plan.json").write_text(plan, encoding="utf-8")
            (job / "after.json").write_text(json.dumps({str(k): v for k, v in
                                                        after_cells.items()}), encoding="utf-8")
            uid = self._uid(slot)
            (job / "passwd").write_text(f"root:x:0:0:root:/root:/bin/sh\nstudent:x:{uid}:{uid}"
                                        f":student:/home/student:/bin/sh\n", encoding="utf-8")
            (job / "group").write_text(f"root:x:0:\nstudent:x:{uid}:\n", encoding="utf-8")
            for f in job.iterdir():
                f.chmod(0o644)
            if self.unsafe:
                result = self._run_unsafe(job, cell_timeout, notebook_timeout, stop_after)
            else:
                result = self._run_sandboxed(job, slot, cell_timeout, notebook_timeout,
                                             stop_after)
        result.seconds = time.perf_counter() - start
        return result

    def _run_sandboxed(self, job, slot, cell_timeout, notebook_timeout, stop_after):
        command = self._command(job, slot, cell_timeout, notebook_timeout, stop_after)
        group = _Cgroup(f"mmbook-grade-{os.getpid()}-{slot}-{time.monotonic_ns()}",
                        self.limits) if self.use_cgroups else None
        if group is not None and group.dirs:
            joins = "".join(f'echo $$ > "{p}" && ' for p in group.procs)
            command = ["/bin/sh", "-c", joins + 'exec "$@"', "sh", *command]
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        cap = self.limits.out_size + (4 << 20)
        out, err = _Capped(proc.stdout, cap), _Capped(proc.stderr, 64 << 10)
        error = None
        try:
            proc.wait(timeout=notebook_timeout + 60)
        except subprocess.TimeoutExpired:
            error = f"the sandbox did not finish within {notebook_timeout + 60:.0f} s"
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()
            if group is not None:
                group.remove()
            out.join()
            err.join()
        if out.overflow:
            return SandboxResult(error="the notebook's results were larger than "
                                       f"{self.limits.out_size} bytes")
        files = _untar(out.data(), self.limits.out_size)
        if error is None and not files:
            error = ("the sandbox gave no result (exit status "
                     f"{proc.returncode}): {err.data().decode('utf-8', 'replace')[-500:]}")
        return SandboxResult(files=files, error=error)

    def _run_unsafe(self, job, cell_timeout, notebook_timeout, stop_after):
        import json

        out = job / "out"
        out.mkdir()
        after = json.loads((job / "after.json").read_text(encoding="utf-8"))
        after = {k: v.replace("/grader/plan.json", str(job / "plan.json"))
                 .replace("/out/answers", str(out / "answers")) for k, v in after.items()}
        (job / "after.json").write_text(json.dumps(after), encoding="utf-8")
        command = runner_command(job / "submission.ipynb", out / "executed.ipynb",
                                 cell_timeout=cell_timeout, allow_errors=True, cwd=job,
                                 after_cells_file=job / "after.json",
                                 output_limit=self.limits.output_limit, stop_after=stop_after)
        env = {**os.environ, **self.env, "PYTHONPATH": str(self.package)}
        with open(out / "runner.json", "wb") as stdout, open(out / "runner.err", "wb") as stderr:
            proc = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env, cwd=job,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            error = None
            try:
                proc.wait(timeout=notebook_timeout)
            except subprocess.TimeoutExpired:
                error = f"the notebook ran over {notebook_timeout:.0f} s"
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                proc.wait()
        files = {}
        for path in out.rglob("*"):
            name = path.relative_to(out).as_posix()
            if path.is_file() and not path.is_symlink() and _NAME.match(name):
                files[name] = path.read_bytes()[: self.limits.out_size]
        return SandboxResult(files=files, error=error)


class _Capped:
    """Reads a pipe in a thread, keeping at most ``cap`` bytes (then only counts)."""

    def __init__(self, pipe, cap: int):
        self.pipe, self.cap, self.chunks, self.size = pipe, cap, [], 0
        self.overflow = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while True:
            chunk = self.pipe.read(1 << 16)
            if not chunk:
                break
            self.size += len(chunk)
            if self.size > self.cap:
                self.overflow = True
                self.chunks = []
            elif not self.overflow:
                self.chunks.append(chunk)
        self.pipe.close()

    def join(self):
        self.thread.join(timeout=10)

    def data(self) -> bytes:
        return b"".join(self.chunks)


def _untar(data: bytes, limit: int) -> dict:
    """The regular files with expected names in a tar archive (untrusted), at most
    ``limit`` bytes in all."""
    files, total = {}, 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for member in archive:
                name = member.name.removeprefix("./")
                if not member.isreg() or not _NAME.match(name):
                    continue
                total += member.size
                if total > limit:
                    break
                f = archive.extractfile(member)
                if f is not None:
                    files[name] = f.read(member.size)
    except (tarfile.TarError, OSError, EOFError):
        pass
    return files

"""The one notebook executor: every notebook the project runs goes through here.

``make notebooks``, ``make book``, ``make seeds``, ``make gpu-check`` and the grader
(:mod:`mmbook.grade`) all execute notebooks with :func:`run_notebook`:

* each notebook runs in a **child process of its own session** (``start_new_session``),
  which starts the kernel, so the whole process group (runner, kernel and anything the
  notebook started) is killed when it runs past ``notebook_timeout`` or when the run ends;
* a cell that runs past ``cell_timeout`` fails the notebook (or, with
  ``allow_errors=True``, is interrupted and the notebook goes on);
* a run that stalls past ``notebook_timeout`` is killed and tried once more (rarely, an
  ipykernel 7 kernel and its nbclient client both sit idle, each waiting for the other;
  nbclient's cell timeout does not fire then);
* with ``idle_timeout``, a run whose processes use no CPU for that long is taken for such a
  stall at once (killed and tried once more), so that ``notebook_timeout`` can be generous
  enough for a machine two or three times slower than usual;
* ``env`` adds environment variables for the kernel (``MMBOOK_SEED`` for the seed runs,
  ``MMBOOK_DEVICE`` for the GPU check); ``command_prefix`` wraps the child (the grader's
  sandbox);
* an interrupted run (Ctrl-C, ``SIGTERM``) kills every notebook's process group before it
  exits, and a child whose parent is gone (even killed with ``SIGKILL``) kills its own
  group: nothing it started goes on running.

The grader (:mod:`mmbook.grade`) runs the same child, :func:`execute_in_process`, inside its
sandbox (:mod:`mmbook.sandbox`, built with :func:`runner_command`), in the *cell by cell*
mode that ``after_cells`` or ``output_limit`` turns on: each cell runs on its own (a cell past
``cell_timeout`` is interrupted (the processes it started are killed first), and a kernel
that ignores the interrupt or dies is restarted, with an event saying so, so the cells
after it still run), the code given for
a cell in ``after_cells`` runs in the kernel right after that cell (the grader dumps each
exercise's answers there, as the student's namespace stands at that cell), each cell keeps
at most ``output_limit`` bytes of output, and execution stops after ``stop_after``.

:func:`store_in_cache` stores executed notebooks where Jupyter Book's
``execute_notebooks: cache`` finds them, keyed as Jupyter Book keys them, so that the book
build renders those outputs instead of executing the notebooks again. Each record also
carries the context it was executed in (:func:`cache_context`: a hash of the ``mmbook``
package's sources and the seed), so :func:`is_current` can tell a record made with today's
code from one made before a change to the package, which Jupyter Book's key (the code
cells only) does not see. A notebook that fails loses its record: no output of an older
run is rendered in its place.

Command line (``tools/run_notebooks.py`` is the same)::

    python -m mmbook.execute book/*.ipynb [--jobs 2] [--cache DIR] [--skip-current] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NotebookRun", "execute_in_process", "runner_command", "run_notebook",
           "run_notebooks", "store_in_cache", "cache_context", "cached_record", "is_current",
           "main"]

STALL = "the notebook ran over"
IDLE = "the notebook stalled"
_LIVE: set = set()  # the child processes running now (killed on an interrupt)
_LIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()


@dataclass
class NotebookRun:
    """The outcome of one notebook's execution.

    Attributes:
        path: the source notebook.
        seconds: wall-clock seconds the run took (retry included).
        error: ``None`` when every cell ran; else the failing cell's error (last 3000
            characters), a kernel death, or the stall message.
        executed: the executed notebook (``nbformat.NotebookNode``), or ``None`` when the
            child wrote none (killed before the end).
        attempts: 1, or 2 when a stalled run was tried again.
    """

    path: str
    seconds: float
    error: str | None
    executed: object = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None


def execute_in_process(path: str, out: str, cell_timeout: int = 600,
                       allow_errors: bool = False, cwd: str | None = None,
                       after_cells: dict | None = None, output_limit: int | None = None,
                       stop_after: int | None = None, sandboxed: bool = False) -> dict:
    """Execute ``path`` with nbclient in this process; write the executed notebook to ``out``.

    Args:
        path: the notebook to run.
        out: where the executed notebook is written (even when a cell failed).
        cell_timeout: seconds a cell may run.
        allow_errors: go on after a failing cell (its error is in the outputs; a cell past
            its time is interrupted) instead of stopping at the first.
        cwd: the kernel's working directory; default the notebook's folder.
        after_cells: ``{cell index: code}``: code run in the kernel right after that cell
            (not stored in the notebook). Turns on the cell by cell mode (module docstring),
            which implies ``allow_errors``.
        output_limit: bytes of output kept per cell (the rest is dropped, with a note);
            also turns on the cell by cell mode.
        stop_after: in the cell by cell mode, the last cell index to run.
        sandboxed: this process is alone in a sandbox with the kernel (mmbook.sandbox): a
            cell past its time, or a kernel restart, kills every other process of this
            user (else only those in the kernel's process group).

    Returns:
        ``{"seconds": float, "error": str | None}``, and in the cell by cell mode
        ``"events"``: ``[{"cell": i, "event": "error" | "timeout" | "restarted" |
        "after-cell timeout", "text": str}]``.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    if after_cells is None and output_limit is None:
        error = _execute_whole(nb, path, cell_timeout, allow_errors, cwd)
        result = {"error": error}
    else:
        events = _execute_cells(nb, path, cell_timeout, cwd, after_cells or {}, output_limit,
                                stop_after, sandboxed)
        result = {"error": None, "events": events}
    result["seconds"] = time.perf_counter() - start
    nbformat.write(nb, out)
    return result


def _execute_whole(nb, path, cell_timeout, allow_errors, cwd) -> str | None:
    """nbclient's own loop over the cells (``make notebooks``, ``make seeds``)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3",
                            allow_errors=allow_errors, interrupt_on_timeout=allow_errors,
                            resources={"metadata": {"path": cwd or str(Path(path).parent)}})
    try:
        client.execute()
    except CellExecutionError as err:
        return str(err)[-3000:]
    except Exception as err:  # a dead kernel, a cell timeout
        return f"{type(err).__name__}: {err}"[-3000:]
    return None


GRACE = 30  # seconds an interrupted cell has to stop before its kernel is restarted


def _capped_client(nb, output_limit: int | None, on_timeout=None, **kwargs):
    """A NotebookClient that keeps at most ``output_limit`` bytes of output per cell, and
    calls ``on_timeout()`` when a cell runs past its time, before nbclient interrupts the
    kernel (``timed_out`` then says so until the next cell)."""
    from nbclient import NotebookClient

    class CappedClient(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            if output_limit is None:
                return super().output(outs, msg, display_id, cell_index)
            # bytes used so far by this output list (kept alive, so that its id is unique)
            _, used = self._mmbook_used.get(id(outs), (outs, 0))
            size = len(json.dumps(msg.get("content", {}), default=str))
            self._mmbook_used[id(outs)] = (outs, used + size)
            if used + size <= output_limit:
                return super().output(outs, msg, display_id, cell_index)
            if used <= output_limit:  # the first output past the cap: say so, once
                outs.append(nbformat_output(f"[output past {output_limit} bytes dropped]\n"))
            return None

        async def _async_handle_timeout(self, timeout, cell=None):
            self.timed_out = True
            if on_timeout is not None:
                on_timeout()
            return await super()._async_handle_timeout(timeout, cell)

    client = CappedClient(nb, **kwargs)
    client._mmbook_used, client.timed_out = {}, False
    return client


def nbformat_output(text: str):
    """A stderr stream output holding ``text``."""
    import nbformat

    return nbformat.v4.new_output("stream", name="stderr", text=text)


def _execute_cells(nb, path, cell_timeout, cwd, after_cells, output_limit, stop_after,
                   sandboxed=False) -> list:
    """The cell by cell mode (module docstring); returns the events."""
    import asyncio

    import nbformat
    from nbclient.exceptions import DeadKernelError

    # iopub_timeout: under heavy load a cell's last outputs can arrive seconds after its
    # reply; nbclient's default (4 s) then drops them. on_timeout: what the cell started
    # dies before the interrupt (a fork bomb's children share the kernel's process group
    # and its sockets: interrupted with it, they would answer in its place)
    client = _capped_client(nb, output_limit, timeout=cell_timeout, kernel_name="python3",
                            allow_errors=True, interrupt_on_timeout=True, iopub_timeout=60,
                            on_timeout=lambda: _kill_strays(kernel_pid(), sandboxed,
                                                            kernel_pid()),
                            resources={"metadata": {"path": cwd or str(Path(path).parent)}})
    events = []
    last = len(nb.cells) - 1 if stop_after is None else min(stop_after, len(nb.cells) - 1)

    def kernel_pid():
        return getattr(getattr(client.km, "provisioner", None), "pid", None)

    class Stop(Exception):
        """The kernel could not be restarted: the notebook stops there."""

    async def restart(index, why):
        events.append({"cell": index, "event": "restarted", "text": why})
        _kill_strays(kernel_pid(), sandboxed, kernel_pid())  # then the kernel, by its manager
        try:
            await asyncio.wait_for(_maybe_await(client.km.restart_kernel(now=True)), 120)
            client.kc.stop_channels()  # a new client: the old one's sockets may be stale
            await client.async_start_new_kernel_client()
        except Exception as err:
            events.append({"cell": index, "event": "stopped", "text": "the kernel could not "
                           f"be restarted ({type(err).__name__}): the notebook stopped here"})
            raise Stop() from err

    async def run_one(cell, index, what):
        """Run one cell (``what``: "" for the notebook's own, "after-cell " for the extra).

        Past ``cell_timeout`` nbclient interrupts the kernel and waits for the interrupted
        cell's reply; a kernel that does not stop within GRACE seconds, or dies, is
        restarted."""
        client.timed_out = False
        try:
            await asyncio.wait_for(client.async_execute_cell(cell, index,
                                                             store_history=not what),
                                   cell_timeout + GRACE)
        except (asyncio.TimeoutError, DeadKernelError):
            if client.timed_out:
                alive = await _maybe_await(client.km.is_alive())
                why = "the interrupt did not stop it" if alive else "the kernel died"
                events.append({"cell": index, "event": f"{what}timeout",
                               "text": f"ran over {cell_timeout} s; {why}"})
                cell.setdefault("outputs", []).append(nbformat.v4.new_output(
                    "error", ename="TimeoutError", evalue=f"the cell ran over {cell_timeout} "
                    f"s; {why}: the kernel was restarted", traceback=[]))
                await restart(index, "the kernel was restarted after a timeout: the cells "
                                     "after this one ran in a fresh kernel")
            else:
                await restart(index, "the kernel died: the cells after this one ran in a "
                                     "fresh kernel")
            return
        if client.timed_out:
            events.append({"cell": index, "event": f"{what}timeout",
                           "text": f"ran over {cell_timeout} s and was interrupted"})
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and not (
                    client.timed_out and output.get("ename") == "KeyboardInterrupt"):
                events.append({"cell": index, "event": f"{what}error",
                               "text": f"{output.get('ename')}: {output.get('evalue')}"[:500]})

    async def run_all():
        async with client.async_setup_kernel():
            for index, cell in enumerate(nb.cells[:last + 1]):
                try:
                    if cell.cell_type == "code":
                        await run_one(cell, index, "")
                    if index in after_cells:  # run as a cell of its own past the end
                        nb.cells.append(nbformat.v4.new_code_cell(after_cells[index]))
                        try:
                            await run_one(nb.cells[-1], len(nb.cells) - 1, "after-cell ")
                        finally:
                            nb.cells.pop()
                except Stop:
                    return

    asyncio.run(run_all())
    return events


def _ancestors() -> set:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def _kill_strays(keep, sandboxed: bool, kernel) -> None:
    """SIGKILL the processes the kernel started (``keep``: a pid spared, the kernel's).

    In the sandbox: every process of this user but this one and its ancestors (the sandbox
    has nothing else). Elsewhere: the other members of the kernel's process group. Sweeps
    until one finds nothing (a fork bomb forks again while it is being killed)."""
    if not os.path.isdir("/proc"):
        return
    spare = _ancestors() | ({keep} if keep else set())
    try:
        group = os.getpgid(kernel) if kernel else None
    except OSError:
        group = None
    for _ in range(100):
        found = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in spare:
                continue
            pid = int(entry)
            try:
                if sandboxed:
                    if os.stat(f"/proc/{pid}").st_uid != os.getuid():
                        continue
                elif group is None or os.getpgid(pid) != group:
                    continue
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        continue  # a zombie: dead already, waiting for its parent
                os.kill(pid, signal.SIGKILL)
                found += 1
            except OSError:
                pass
        if not found:
            return
        time.sleep(0.05)


async def _maybe_await(value):
    import inspect

    return await value if inspect.isawaitable(value) else value


def runner_command(path, write, *, cell_timeout: int, allow_errors: bool = False, cwd=None,
                   after_cells_file=None, output_limit: int | None = None,
                   stop_after: int | None = None, sandboxed: bool = False,
                   python: str = sys.executable) -> list:
    """The command line of the child that :func:`run_notebook` starts (the grader starts
    it inside its sandbox): it runs :func:`execute_in_process` and prints its result as
    one JSON line.

    Args:
        path, write: the notebook, and where the executed copy goes.
        after_cells_file: a JSON file ``{"cell index": code}`` (see
            :func:`execute_in_process`).
        python: the interpreter that runs the child.
    """
    command = [python, "-m", "mmbook.execute", "--one", str(path), "--write", str(write),
               "--timeout", str(cell_timeout)]
    if allow_errors:
        command.append("--allow-errors")
    if cwd is not None:
        command += ["--cwd", str(cwd)]
    if after_cells_file is not None:
        command += ["--after-cells", str(after_cells_file)]
    if output_limit is not None:
        command += ["--output-limit", str(output_limit)]
    if stop_after is not None:
        command += ["--stop-after", str(stop_after)]
    if sandboxed:
        command.append("--sandboxed")
    return command


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the child's whole process group (the runner, its kernel, their children)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_live() -> None:
    """Stop every notebook now running (on an interrupt): no new one starts after this."""
    _STOPPING.set()
    with _LIVE_LOCK:
        for proc in list(_LIVE):
            _kill_group(proc)


class _CpuWatch:
    """Seconds since the child's processes last used CPU (``None``: cannot tell here)."""

    def __init__(self, pid: int):
        try:
            import psutil

            self._root, self._psutil = psutil.Process(pid), psutil
        except Exception:  # no psutil, or the child is gone already
            self._root = None
        self._seen: dict = {}
        self._last = time.perf_counter()

    def _cpu(self) -> dict:
        times = {}
        for p in [self._root, *self._root.children(recursive=True)]:
            try:
                t = p.cpu_times()
                times[p.pid] = t.user + t.system
            except self._psutil.Error:
                pass
        return times

    def idle_seconds(self) -> float | None:
        if self._root is None:
            return None
        try:
            now_cpu = self._cpu()
        except self._psutil.Error:
            return None
        if any(cpu > self._seen.get(pid, -1.0) + 0.01 for pid, cpu in now_cpu.items()):
            self._last = time.perf_counter()
        self._seen = now_cpu
        return time.perf_counter() - self._last


def _wait(proc: subprocess.Popen, notebook_timeout: float, idle_timeout: float | None):
    """``(stdout, stderr, None)``, or ``(None, None, why)`` when the run must be stopped."""
    start, watch = time.perf_counter(), _CpuWatch(proc.pid) if idle_timeout else None
    while True:
        left = notebook_timeout - (time.perf_counter() - start)
        if left <= 0:
            return None, None, f"{STALL} {notebook_timeout:g} s and was stopped"
        try:
            stdout, stderr = proc.communicate(timeout=min(left, 5.0) if watch else left)
            return stdout, stderr, None
        except subprocess.TimeoutExpired:
            idle = watch.idle_seconds() if watch else None
            if idle is not None and idle > idle_timeout:
                return None, None, (f"{IDLE}: its processes used no CPU for {idle:.0f} s "
                                    "and were stopped")


def _run_once(path: str, out: Path, *, cell_timeout: int, notebook_timeout: float,
              allow_errors: bool, env: dict | None, cwd: str | None,
              command_prefix: Sequence[str],
              idle_timeout: float | None = None) -> tuple[float, str | None]:
    command = [*command_prefix, *runner_command(path, out, cell_timeout=cell_timeout,
                                                allow_errors=allow_errors, cwd=cwd)]
    full_env = {**os.environ, **(env or {})}
    start = time.perf_counter()
    with _LIVE_LOCK:
        if _STOPPING.is_set():
            return 0.0, "interrupted before it started"
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True, env=full_env)
        _LIVE.add(proc)
    try:
        stdout, stderr, stopped = _wait(proc, notebook_timeout, idle_timeout)
        if stopped:
            return time.perf_counter() - start, stopped
        lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
        result = json.loads(lines[-1]) if lines else {
            "error": f"the runner failed (exit {proc.returncode}): {stderr[-2000:]}"}
        return time.perf_counter() - start, result["error"]
    finally:
        _kill_group(proc)  # whatever the notebook left running dies with it
        if proc.poll() is None or proc.stdout and not proc.stdout.closed:
            proc.communicate()
        with _LIVE_LOCK:
            _LIVE.discard(proc)


def run_notebook(path, *, cell_timeout: int = 600, notebook_timeout: float = 600,
                 allow_errors: bool = False, env: dict | None = None, cwd=None,
                 command_prefix: Sequence[str] = (), retry_stall: bool = True,
                 workdir=None, idle_timeout: float | None = None) -> NotebookRun:
    """Execute one notebook in a child process of its own session; see the module docstring.

    Args:
        path: the notebook.
        cell_timeout: seconds a cell may run.
        notebook_timeout: seconds the whole run may take before its process group is killed.
        allow_errors: go on after a failing cell (see :func:`execute_in_process`).
        env: extra environment variables for the child and its kernel.
        cwd: the kernel's working directory (default the notebook's folder).
        command_prefix: a command that wraps the child (e.g. a sandbox), empty by default.
        retry_stall: kill and try once more a run that goes past ``notebook_timeout``.
        workdir: folder for the executed copy; default a temporary folder.
        idle_timeout: seconds without any CPU use by the run's processes after which it is
            taken for a stall (killed, and tried once more with ``retry_stall``); ``None``
            (default) leaves only ``notebook_timeout``.

    Returns:
        a :class:`NotebookRun`.
    """
    import nbformat

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(workdir or tmp) / (Path(path).stem + ".executed.ipynb")
        kwargs = dict(cell_timeout=cell_timeout, notebook_timeout=notebook_timeout,
                      allow_errors=allow_errors, env=env, cwd=cwd,
                      command_prefix=tuple(command_prefix), idle_timeout=idle_timeout)
        seconds, error = _run_once(str(path), out, **kwargs)
        attempts = 1
        if (retry_stall and error is not None and error.startswith((STALL, IDLE))
                and not _STOPPING.is_set()):
            print(f"{path}: {error}; trying once more", flush=True)
            out.unlink(missing_ok=True)
            more, error = _run_once(str(path), out, **kwargs)
            seconds, attempts = seconds + more, 2
        executed = nbformat.read(out, as_version=4) if out.exists() else None
    return NotebookRun(str(path), seconds, error, executed, attempts)


def run_notebooks(paths, jobs: int = 1, report=None, **kwargs) -> list[NotebookRun]:
    """:func:`run_notebook` over ``paths``, ``jobs`` at a time, in the order given.

    ``report`` (optional) is called with each :class:`NotebookRun` as soon as it ends.
    Interrupted (``KeyboardInterrupt``, or ``SystemExit`` from a signal handler), it kills
    every notebook still running, with its kernel, before it re-raises.
    """
    def one(path):
        run = run_notebook(path, **kwargs)
        if report is not None:
            report(run)
        return run

    _STOPPING.clear()
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = [pool.submit(one, p) for p in paths]
        try:
            pending = set(futures)
            while pending:  # wake up each second: a signal handler runs in this thread only
                _, pending = wait(pending, timeout=1.0)
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            _kill_live()
            raise


def cache_context(env: dict | None = None) -> dict:
    """What an executed notebook's outputs depend on beyond its own code cells.

    ``{"mmbook": SHA-256 of the package's source files, "seed": MMBOOK_SEED or "0"}``, read
    from ``env`` over ``os.environ``. Stored with each cache record (:func:`store_in_cache`).
    The tools that run notebooks rather than run in them (this executor, the ``__main__``
    command lines) are left out of the hash.
    """
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for file in sorted(root.rglob("*")):
        if file == Path(__file__).resolve() or file.name == "__main__.py":
            continue
        if file.is_file() and (file.suffix == ".py" or file.name == "SHA256SUMS"):
            digest.update(file.relative_to(root).as_posix().encode() + b"\0")
            digest.update(file.read_bytes())
    seed = {**os.environ, **(env or {})}.get("MMBOOK_SEED") or "0"
    return {"mmbook": digest.hexdigest(), "seed": seed}


def cached_record(path, cache_path):
    """The jupyter-cache record matching ``path``'s code cells as Jupyter Book keys them (its
    ``data`` holds ``context``, ``run`` and ``execution_seconds``), or ``None``."""
    import nbformat
    from jupyter_cache import get_cache

    if not Path(cache_path).exists():
        return None
    try:
        return get_cache(str(cache_path)).match_cache_notebook(
            nbformat.read(str(path), as_version=4))
    except KeyError:
        return None


def is_current(path, cache_path, context: dict | None = None) -> bool:
    """True when the cache holds outputs of ``path``'s code cells executed in ``context``
    (default :func:`cache_context`): executing it again would change nothing."""
    record = cached_record(path, cache_path)
    data = (record.data or {}) if record is not None else {}
    return record is not None and data.get("context") == (context or cache_context())


def _remove_record(cache, pk: int) -> None:
    from jupyter_cache.cache.db import NbCacheRecord

    try:
        cache.remove_cache(pk)
    except KeyError:  # the record without its notebook file
        NbCacheRecord.remove_records([pk], cache.db)


def store_in_cache(runs, cache_path, context: dict | None = None) -> None:
    """Store the successful runs where Jupyter Book's ``execute_notebooks: cache`` finds them
    (the same record it would write after executing them itself), with ``context`` (default
    :func:`cache_context`) and a run id; drop the other records of the same notebook (its
    older versions). A failed run drops the notebook's record, so that no output of an older
    run is rendered in its place."""
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache, context = get_cache(str(cache_path)), context or cache_context()
    for run in runs:
        uri = str(Path(run.path).resolve())
        for record in [r for r in cache.list_cache_records() if r.uri == uri]:
            _remove_record(cache, record.pk)
        if not (run.ok and run.executed is not None):
            continue
        # the key hashes the code cells with ALL their metadata: copy the outputs into
        # the source notebook rather than caching nbclient's copy (it adds timings)
        nb = nbformat.read(run.path, as_version=4)
        if [c.cell_type for c in nb.cells] != [c.cell_type for c in run.executed.cells]:
            raise ValueError(f"{run.path} changed while it ran (its cells are not those of the "
                             "executed copy): execute it again")
        for cell, done in zip(nb.cells, run.executed.cells):
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = done.outputs, done.execution_count
        data = {"execution_seconds": run.seconds, "context": context,
                "run": uuid.uuid4().hex}
        cache.cache_notebook_bundle(CacheBundleIn(nb, uri, data=data),
                                    check_validity=False, overwrite=True)


def _print_run(run: NotebookRun) -> None:
    print(f"{run.seconds:7.1f} s  {'ok    ' if run.ok else 'FAILED'}  {run.path}", flush=True)


def _die_with_parent() -> None:
    """In the child: kill its own process group (itself and the kernel) as soon as the
    process that started it is gone, however it ended (even ``SIGKILL``)."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os.killpg(os.getpgid(0), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)  # run_notebooks kills the children on the way out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmbook.execute",
                                     description="Execute notebooks, each in a process "
                                     "of its own, and print each one's time.")
    parser.add_argument("notebooks", nargs="*")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", default=None, help="folder for the executed notebooks")
    parser.add_argument("--cache", default=None, help="jupyter-cache folder to fill")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--notebook-timeout", type=int, default=600,
                        help="seconds per notebook (a run past it is tried once more)")
    parser.add_argument("--idle-timeout", type=int, default=None,
                        help="seconds without CPU use after which a run is taken for a "
                             "stall (killed and tried once more)")
    parser.add_argument("--skip-current", action="store_true",
                        help="with --cache: do not execute a notebook whose cache record "
                             "was made from the same code cells, package and seed")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--write", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--allow-errors", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cwd", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--after-cells", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--output-limit", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sandboxed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        _die_with_parent()
        after = None
        if args.after_cells:
            with open(args.after_cells, encoding="utf-8") as f:
                after = {int(k): v for k, v in json.load(f).items()}
        print(json.dumps(execute_in_process(args.one, args.write, args.timeout,
                                            args.allow_errors, args.cwd, after,
                                            args.output_limit, args.stop_after,
                                            args.sandboxed)), flush=True)
        return 0
    start, context = time.perf_counter(), cache_context()
    todo = list(args.notebooks)
    if args.skip_current and args.cache is not None:
        todo = [p for p in todo if not is_current(p, args.cache, context)]
        for path in args.notebooks:
            if path not in todo:
                print(f"{'':11}cached  {path}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    # Ctrl-C raises KeyboardInterrupt even where SIGINT came in ignored (a background job)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    storing = threading.Lock()

    def report(run: NotebookRun) -> None:
        _print_run(run)
        if args.cache is not None and not _STOPPING.is_set():
            with storing:  # each notebook cached as it ends: an interrupt loses no finished one
                store_in_cache([run], args.cache, context)

    try:
        runs = run_notebooks(todo, args.jobs, report=report, cell_timeout=args.timeout,
                             notebook_timeout=args.notebook_timeout,
                             idle_timeout=args.idle_timeout)
    except (KeyboardInterrupt, SystemExit) as stop:
        print("interrupted: every notebook's processes were stopped; the notebooks that had "
              "finished are cached", file=sys.stderr)
        return stop.code if isinstance(stop, SystemExit) else 130
    if args.out is not None:
        import nbformat

        Path(args.out).mkdir(parents=True, exist_ok=True)
        for run in runs:
            if run.executed is not None:
                nbformat.write(run.executed, str(Path(args.out) / Path(run.path).name))
    print("in order:")
    for run in runs:
        _print_run(run)
    print(f"{time.perf_counter() - start:7.1f} s  total wall time ({args.jobs} jobs)")
    for run in runs:
        if not run.ok:
            print(f"\n===== {run.path} =====\n{run.error}", file=sys.stderr)
    return 0 if all(run.ok for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Build, cache and install the zeroc-ice 3.6.5 wheel that omero-py needs.

The package index offers zeroc-ice 3.6.5 for Linux only as a source archive,
and that archive does not compile on Python 3.11 or newer: ``src/Slice.cpp``
includes ``<eval.h>``, which Python 3.11 removed, and ``src/Util.cpp`` reads
``PyThreadState->frame``, a field Python 3.11 removed; and its ``Ice.py``
imports ``imp``, which Python 3.12 removed. This script fetches the archive,
fixes those lines, compiles the C++ sources in parallel, and keeps the wheel
in a cache outside the repository, keyed by Python version and platform, so
the minutes of compiling are spent once per machine.

Usage (standard library only, run with the Python of the target environment)::

    python scripts/build_ice_wheel.py            # build or reuse, then install
    python scripts/build_ice_wheel.py --no-install   # only print the wheel path

The cache lives in ``$AIOMERO_CACHE_DIR``, else ``$XDG_CACHE_HOME/aiomero``,
else ``~/.cache/aiomero``. An interpreter that already has zeroc-ice 3.6.5 is
left alone.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from importlib import metadata
from pathlib import Path

ICE_VERSION = "3.6.5"

# Each fix is (file, text as shipped, replacement); a fix whose text is gone
# means the archive changed under us, which must stop the build loudly.
SOURCE_FIXES = (
    ("src/Slice.cpp", "#include <eval.h>\n", "\n"),
    (
        "src/Util.cpp",
        "PyFrameObject *f = PyThreadState_GET()->frame;",
        "PyFrameObject *f = PyEval_GetFrame();",
    ),
    # Python 3.12 removed the imp module; types makes the same empty module.
    (
        "lib/Ice.py",
        "import sys, string, imp, os,",
        "import sys, string, types, os,",
    ),
    ("lib/Ice.py", "nmod = imp.new_module(curr)", "nmod = types.ModuleType(curr)"),
)
# Names the fixes above in the cache, so that a wheel built with other fixes
# is never reused.
RECIPE = "fix3"

# Runs setup.py with distutils' compile step spread over every core: the
# runtime is one extension of ~400 C++ files that setuptools would otherwise
# compile one after another.
PARALLEL_SETUP = r"""
import os, runpy, sys
from concurrent.futures import ThreadPoolExecutor
import setuptools
import distutils.ccompiler as ccompiler

def compile(self, sources, output_dir=None, macros=None, include_dirs=None,
            debug=0, extra_preargs=None, extra_postargs=None, depends=None):
    macros, objects, extra_postargs, pp_opts, build = self._setup_compile(
        output_dir, macros, include_dirs, sources, depends, extra_postargs)
    cc_args = self._get_cc_args(pp_opts, debug, extra_preargs)
    total = len(objects)
    done = [0]

    def one(obj):
        src, ext = build[obj]
        self._compile(obj, src, ext, cc_args, extra_postargs, pp_opts)
        done[0] += 1
        if done[0] % 25 == 0 or done[0] == total:
            print(f"  compiled {done[0]}/{total} files", flush=True)

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        list(pool.map(one, objects))
    return objects

ccompiler.CCompiler.compile = compile
sys.argv = ["setup.py", "-q", "bdist_wheel", "-d", sys.argv[1]]
runpy.run_path("setup.py", run_name="__main__")
"""


def cache_dir() -> Path:
    """The directory holding built wheels, outside any repository."""
    if os.environ.get("AIOMERO_CACHE_DIR"):
        base = Path(os.environ["AIOMERO_CACHE_DIR"])
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg) / "aiomero" if xdg else Path.home() / ".cache" / "aiomero"
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}-{sysconfig.get_platform()}"
    return base / "wheels" / f"zeroc-ice-{ICE_VERSION}-{RECIPE}" / tag


def installed_version() -> str | None:
    try:
        return metadata.version("zeroc-ice")
    except metadata.PackageNotFoundError:
        return None


def installed_runs() -> bool:
    """Whether the installed runtime imports on this Python: a wheel built
    without the fixes above installs on Python 3.12 but fails to import."""
    done = subprocess.run(
        [sys.executable, "-c", "import Ice"], capture_output=True, check=False
    )
    return done.returncode == 0


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)


def build_wheel(dest: Path) -> Path:
    """Fetch the source archive, fix it, compile it and return the wheel."""
    started = time.monotonic()
    print(
        f"building zeroc-ice {ICE_VERSION} for Python "
        f"{sys.version_info[0]}.{sys.version_info[1]}: this compiles about 400 "
        f"C++ files and takes several minutes on 2 cores, once per machine",
        flush=True,
    )
    pip("install", "--quiet", "setuptools<70", "wheel")
    with tempfile.TemporaryDirectory(prefix="aiomero-ice-") as tmp:
        work = Path(tmp)
        pip(
            "download", "--quiet", "--no-deps", "--no-binary", ":all:",
            f"zeroc-ice=={ICE_VERSION}", "-d", str(work),
        )  # fmt: skip
        archive = next(work.glob("zeroc-ice-*.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(work)
        src = work / f"zeroc-ice-{ICE_VERSION}"

        for name, old, new in SOURCE_FIXES:
            path = src / name
            text = path.read_text()
            if old not in text:
                raise SystemExit(f"{name}: expected line not found, cannot fix it")
            path.write_text(text.replace(old, new, 1))

        out = work / "dist"
        subprocess.run(
            [sys.executable, "-c", PARALLEL_SETUP, str(out)], cwd=src, check=True
        )
        wheel = next(out.glob("*.whl"))
        dest.mkdir(parents=True, exist_ok=True)
        final = dest / wheel.name
        # Copy under a temporary name first so an interrupted copy never
        # leaves a truncated wheel that a later run would trust.
        partial = dest / (wheel.name + ".partial")
        partial.write_bytes(wheel.read_bytes())
        partial.replace(final)
    print(f"built {final.name} in {time.monotonic() - started:.0f} s", flush=True)
    return final


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--no-install", action="store_true", help="build or find, do not install"
    )
    args = parser.parse_args()

    have = installed_version()
    if have == ICE_VERSION and installed_runs():
        print(f"zeroc-ice {have} already installed")
        return 0

    dest = cache_dir()
    wheels = sorted(dest.glob("zeroc_ice-*.whl"))
    wheel = wheels[-1] if wheels else build_wheel(dest)
    if wheels:
        print(f"using cached {wheel}")
    if args.no_install:
        print(wheel)
        return 0
    # A copy that cannot run here (built without the fixes) is replaced.
    pip("install", "--quiet", "--force-reinstall", "--no-deps", str(wheel))
    print(f"installed zeroc-ice {ICE_VERSION} from {wheel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

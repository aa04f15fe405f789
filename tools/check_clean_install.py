"""Install ivnext from nothing, as a user would, measure the install and use the result.

Steps, each timed:

1. ``build_wheel``: the ivnext wheel from a copy of this repository (``pip wheel --no-deps``, offline, with this
   interpreter's setuptools).
2. ``create_venv``: a fresh virtual environment (``python -m venv``, with its own pip). Checked: no system
   site-packages, no user site, nothing of this repository or of the running environment on its ``sys.path`` or
   in a ``.pth`` file. With ``--pip SPEC`` that pip replaces the venv's own first (``upgrade_pip``, not counted in
   the user's install).
3. ``install_torch``: ``pip install torch==2.13.0``, first and alone.
4. ``install_ivnext``: ``pip install mmcv-lite==2.1.0 <ivnext wheel>``: every other requirement resolved by pip
   from the registry.
5. ``checks``: ``pip check``, then ``tools/check_installed_ivnext.py`` run by the venv's Python from a folder
   outside the repository (``import ivnext``, a Runner from an ``ivnext::`` and from an ``mmaction::`` config, the
   two console scripts).

Steps 3 and 4 are the commands of :data:`USER_INSTALL` and run as a user's would: pip reads no configuration file
and no ``PIP_*`` setting of this environment (but ``PIP_CERT`` / ``PIP_DEFAULT_TIMEOUT``), packages come from
``--index-url`` (PyPI) only. Two additions keep a wrong resolve from downloading gigabytes: step 3 may also look in
``--torch-find-links`` (default ``$PIP_FIND_LINKS``, where a CPU machine keeps its CPU torch wheel), and step 4
holds torch at step 3's version with a constraint (a requirement asking for another torch then fails the resolve,
which a user's install would have answered with a new torch). Any download of a torch, triton or ``nvidia-*`` wheel
stops the run (``--allow-cuda-download`` permits it).

Measured for each pip step: wall time; bytes downloaded, as the sum of the sizes on pip's ``Downloading NAME
(SIZE)`` lines (package files and ``.metadata`` files, in pip's decimal MB), with the growth of pip's HTTP cache as
a cross-check (package files plus index pages; the cache is a fresh, empty folder unless ``--cache-dir`` names one;
a warm cache still resolves every requirement against the registry but downloads less); whether the resolver
backtracked (pip's ``INFO: pip is looking at multiple versions`` / ``backtracking`` messages, or two versions of one
package fetched). Prints a summary and, with ``--json``, writes it. Exit code 0 when every step and check passed, 1
otherwise (the folder with the venv and the pip logs is then kept and named). Example::

    .venv/bin/python tools/check_clean_install.py --json clean_install.json
"""
import argparse
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CHECKER = osp.join(REPO, 'tools', 'check_installed_ivnext.py')
# What the wheel is built from (setup.cfg's packages and package data, MANIFEST.in).
SOURCES = ('setup.py', 'setup.cfg', 'MANIFEST.in', 'LICENSE', 'README.md', 'requirements', 'configs', 'ivnext')
TORCH = 'torch==2.13.0'
MMCV = 'mmcv-lite==2.1.0'
PYPI = 'https://pypi.org/simple'
# The user's commands (README, "Set-up"); steps 3 and 4 run them with the wheel in place of ``.``.
USER_INSTALL = f"""\
python3 -m venv ivnext-env
ivnext-env/bin/pip install {TORCH}       # first, alone (CPU: --index-url https://download.pytorch.org/whl/cpu)
ivnext-env/bin/pip install {MMCV} .  # from the repository root; the rest comes from PyPI
"""
# Versions named in the summary (pip's normalised names).
SUMMARY_PACKAGES = ('torch', 'numpy', 'transformers', 'diffusers', 'huggingface-hub', 'mmengine', 'mmcv-lite',
                    'mmaction2', 'timm', 'torchvision')
PIP_SETTINGS_KEPT = ('PIP_CERT', 'PIP_DEFAULT_TIMEOUT')

DOWNLOAD_LINE = re.compile(r'^\s*Downloading (\S+)(?: \(([\d.]+) (bytes|kB|MB|GB)\))?\s*$')
CACHED_LINE = re.compile(r'^\s*Using cached (\S+)(?: \(([\d.]+) (bytes|kB|MB|GB)\))?\s*$')
LOCAL_FILE_LINE = re.compile(r'^\s*Processing (/\S+\.whl)\s*$')
BACKTRACKING_LINE = re.compile(r'INFO: pip is looking at multiple versions|backtracking', re.IGNORECASE)
CUDA_DOWNLOAD = re.compile(r'^\s*Downloading (?:\S*/)?(?:torch|triton|nvidia[-_]\w+)-\d', re.IGNORECASE)
UNITS = dict(bytes=1, kB=1e3, MB=1e6, GB=1e9)


class InstallError(RuntimeError):
    """A step that did not do what it should; the message names the step and where its log is.

    Args:
        message: What failed.
        lines: The failed command's output lines, when a command failed.
    """

    def __init__(self, message: str, lines: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.lines = list(lines)


def normalise(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r'[-_.]+', '-', name).lower()


def file_name_version(file_name: str) -> Optional[tuple]:
    """``(name, version)`` of a wheel, sdist or ``.whl.metadata`` file name (or URL); None if not one."""
    base = file_name.rsplit('/', 1)[-1].split('#', 1)[0]
    base = base[:-len('.metadata')] if base.endswith('.metadata') else base
    if base.endswith('.whl'):
        parts = base.split('-')
        return (normalise(parts[0]), parts[1]) if len(parts) >= 5 else None
    for ending in ('.tar.gz', '.zip', '.tar.bz2'):
        if base.endswith(ending) and '-' in base:
            name, version = base[:-len(ending)].rsplit('-', 1)
            return normalise(name), version
    return None


def parse_pip_output(lines: Sequence[str]) -> Dict:
    """What pip fetched and whether it backtracked, from its output.

    Returns:
        dict: ``downloaded_bytes`` / ``downloads`` (``Downloading`` lines; a line without size counts 0 bytes and is
        listed in ``downloads_without_size``), ``cached_bytes`` / ``cached`` (``Using cached``), ``local_files``
        (wheels pip installed from local paths, with their sizes), ``backtracking`` (bool), ``backtracking_lines``
        and ``several_versions`` (packages fetched in more than one version).
    """
    downloaded, cached, without_size, local, backtracking = [], [], [], [], []
    for line in lines:
        for pattern, found in ((DOWNLOAD_LINE, downloaded), (CACHED_LINE, cached)):
            match = pattern.match(line)
            if match:
                size = float(match.group(2)) * UNITS[match.group(3)] if match.group(2) else 0.0
                found.append((match.group(1), size))
                if pattern is DOWNLOAD_LINE and not match.group(2):
                    without_size.append(match.group(1))
        match = LOCAL_FILE_LINE.match(line)
        if match and osp.isfile(match.group(1)):
            local.append((match.group(1), osp.getsize(match.group(1))))
        if BACKTRACKING_LINE.search(line):
            backtracking.append(line.strip())
    versions: Dict[str, set] = {}
    for file_name, _ in downloaded + cached:
        parsed = file_name_version(file_name)
        if parsed:
            versions.setdefault(parsed[0], set()).add(parsed[1])
    several = {name: sorted(found) for name, found in versions.items() if len(found) > 1}
    return dict(downloaded_bytes=int(sum(size for _, size in downloaded)), downloads=len(downloaded),
                downloads_without_size=without_size, cached_bytes=int(sum(size for _, size in cached)),
                cached=len(cached), local_files=[dict(path=p, bytes=b) for p, b in local],
                backtracking=bool(backtracking or several), backtracking_lines=backtracking[:20],
                several_versions=several)


def folder_bytes(path: str, skip_top: Sequence[str] = ()) -> int:
    """Bytes of the files under ``path``, leaving out its top-level entries named in ``skip_top``."""
    total = 0
    for folder, dirs, files in os.walk(path):
        if folder == path:
            dirs[:] = [d for d in dirs if d not in skip_top]
        total += sum(osp.getsize(osp.join(folder, f)) for f in files if not osp.islink(osp.join(folder, f)))
    return total


def http_cache_bytes(cache_dir: str) -> int:
    """Bytes of pip's HTTP cache (downloaded responses); locally built wheels and the self-check are left out."""
    return folder_bytes(cache_dir, skip_top=('wheels', 'selfcheck')) if osp.isdir(cache_dir) else 0


def mb(num_bytes: float) -> float:
    """Decimal megabytes, as pip prints them."""
    return round(num_bytes / 1e6, 1)


class CleanInstall:
    """One run: the folder, the venv, the environments the commands run in and the record of every step.

    Args:
        root: Empty folder for the sources, wheel, venv, pip cache (unless ``cache_dir``), logs and check outputs.
        cache_dir: pip cache; a fresh folder under ``root`` when None.
        index_url: The registry steps 3 and 4 install from.
        torch_find_links: Extra folder (or URL) step 3 may take torch from.
        allow_cuda_download: Let pip download torch, triton or ``nvidia-*`` wheels.
        step_timeout: Seconds after which a step's command is stopped.
    """

    def __init__(self, root: str, cache_dir: Optional[str] = None, index_url: str = PYPI,
                 torch_find_links: Optional[str] = None, allow_cuda_download: bool = False,
                 step_timeout: float = 1800.0) -> None:
        self.root = root
        self.cache_dir = osp.abspath(cache_dir) if cache_dir else osp.join(root, 'pip-cache')
        self.cache_was_empty = http_cache_bytes(self.cache_dir) == 0
        self.index_url = index_url
        self.torch_find_links = torch_find_links
        self.allow_cuda_download = allow_cuda_download
        self.step_timeout = step_timeout
        self.venv = osp.join(root, 'venv')
        self.python = osp.join(self.venv, 'bin', 'python')
        self.logs = osp.join(root, 'logs')
        os.makedirs(self.logs, exist_ok=True)
        self.steps: Dict[str, Dict] = {}
        self.record: Dict = dict(passed=False, steps=self.steps, index_url=index_url, cache_dir=self.cache_dir,
                                 cache='cold' if self.cache_was_empty else 'warm', user_install=USER_INSTALL)

    # ------------------------------------------------------------------------------------------------ environments
    def foreign_paths(self) -> List[str]:
        """Folders the fresh venv must not see: this repository and the environment running this script."""
        paths = [REPO]
        if sys.prefix != sys.base_prefix:
            paths.append(sys.prefix)
        return [osp.realpath(p) for p in paths]

    def venv_env(self) -> Dict[str, str]:
        """The environment of commands run in the venv: as after ``activate``, without settings of this one."""
        env = {k: v for k, v in os.environ.items()
               if k not in ('PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP', 'PYTHONUSERBASE', 'VIRTUAL_ENV')
               and not k.startswith('PIP_')}
        foreign = self.foreign_paths()
        path = [p for p in env.get('PATH', '').split(os.pathsep)
                if p and not any(osp.realpath(p).startswith(f + os.sep) or osp.realpath(p) == f for f in foreign)]
        env['PATH'] = os.pathsep.join([osp.join(self.venv, 'bin'), *path])
        env['VIRTUAL_ENV'] = self.venv
        return env

    def pip_env(self) -> Dict[str, str]:
        """The environment of the user's pip commands: no configuration file, no ``PIP_*`` but the kept ones."""
        env = self.venv_env()
        env.update({k: os.environ[k] for k in PIP_SETTINGS_KEPT if k in os.environ})
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_CACHE_DIR=self.cache_dir, PIP_DISABLE_PIP_VERSION_CHECK='1',
                   PIP_NO_INPUT='1', PIP_PROGRESS_BAR='off')
        return env

    # ------------------------------------------------------------------------------------------------------ steps
    def run(self, step: str, cmd: List[str], env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
            guard: bool = False) -> List[str]:
        """Run one command of ``step``, log its output, and time it into the step's record.

        Args:
            guard: Stop the command at its first download of a torch / triton / ``nvidia-*`` wheel.

        Returns:
            list: The command's output lines (stdout and stderr together).

        Raises:
            InstallError: The command exited non-zero, ran past the step timeout or started a CUDA download.
        """
        log_path = osp.join(self.logs, f'{step}.log')
        record = self.steps.setdefault(step, dict(seconds=0.0, commands=[], log=log_path))
        record['commands'].append(' '.join(cmd))
        lines: List[str] = []
        stopped: List[str] = []
        start = time.perf_counter()
        with open(log_path, 'a') as log:
            log.write(f'$ {" ".join(cmd)}\n')
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                    cwd=cwd, bufsize=1)

            def stop(reason: str) -> None:
                stopped.append(reason)
                proc.kill()

            timer = threading.Timer(self.step_timeout, stop, [f'ran past the step timeout of {self.step_timeout} s'])
            timer.start()
            try:
                for line in proc.stdout:
                    log.write(line)
                    lines.append(line.rstrip('\n'))
                    if guard and not self.allow_cuda_download and CUDA_DOWNLOAD.match(line) and not stopped:
                        stop(f'pip started downloading a CUDA build ({line.strip()}); install the CPU torch wheel '
                             'first or pass --allow-cuda-download')
                code = proc.wait()
            finally:
                timer.cancel()
        record['seconds'] = round(record['seconds'] + time.perf_counter() - start, 2)
        if stopped or code != 0:
            reason = stopped[0] if stopped else f'exited {code}'
            tail = '\n'.join(lines[-25:])
            record['error'] = f'{" ".join(cmd)}: {reason}'
            raise InstallError(f'{step}: {" ".join(cmd)}: {reason} (log: {log_path})\n{tail}', lines)
        return lines

    def pip_step(self, step: str, args: List[str]) -> None:
        """A user's ``pip install`` in the venv, with its download and backtracking record."""
        before = http_cache_bytes(self.cache_dir)
        lines = self.run(step, [self.python, '-m', 'pip', 'install', *args], env=self.pip_env(), guard=True)
        record = self.steps[step]
        record.update(parse_pip_output(lines))
        record['downloaded_mb'] = mb(record['downloaded_bytes'])
        record['cache_growth_mb'] = mb(http_cache_bytes(self.cache_dir) - before)

    def build_wheel(self) -> str:
        """Step 1: the ivnext wheel of this repository's working tree. Returns its path."""
        src = osp.join(self.root, 'src')
        os.makedirs(src)
        for name in SOURCES:
            path = osp.join(REPO, name)
            if osp.isdir(path):
                shutil.copytree(path, osp.join(src, name), symlinks=True,
                                ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
            else:
                shutil.copy2(path, osp.join(src, name))
        wheels = osp.join(self.root, 'wheel')
        self.run('build_wheel', [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
                                 '--no-index', '-q', src, '-w', wheels])
        built = [f for f in os.listdir(wheels) if f.startswith('ivnext-') and f.endswith('.whl')]
        if len(built) != 1:
            raise InstallError(f'build_wheel: expected one ivnext wheel in {wheels}, found {built}')
        self.record['wheel'] = built[0]
        return osp.join(wheels, built[0])

    def create_venv(self, python: str) -> None:
        """Step 2: a fresh venv; checks that it shares nothing with this environment."""
        self.run('create_venv', [python, '-m', 'venv', self.venv], env=self.venv_env())
        with open(osp.join(self.venv, 'pyvenv.cfg')) as f:
            settings = dict(line.split('=', 1) for line in f.read().splitlines() if '=' in line)
        settings = {k.strip(): v.strip() for k, v in settings.items()}
        if settings.get('include-system-site-packages', 'false').lower() != 'false':
            raise InstallError(f'create_venv: {self.venv} includes the system site-packages')
        probe = self.run('create_venv', [self.python, '-c', 'import json, site, sys; '
                                         'print(json.dumps([site.ENABLE_USER_SITE, sys.path, sys.version, '
                                         'site.getsitepackages()]))'], env=self.venv_env(), cwd=self.root)
        user_site, path, version, site_packages = json.loads(probe[-1])
        self.record['python'] = version.split()[0]
        self.isolation_problems('create_venv', user_site, path, site_packages)
        self.site_packages = site_packages[0]
        self.record['pip'] = self.run('create_venv', [self.python, '-m', 'pip', '--version'],
                                      env=self.pip_env())[-1].split()[1]

    def isolation_problems(self, step: str, user_site: bool, path: List[str], site_packages: List[str]) -> None:
        """Raise if the venv would import from the user site, this repository or the running environment."""
        foreign = self.foreign_paths()
        problems = [f'sys.path entry {p}' for p in path
                    if any(osp.realpath(p) == f or osp.realpath(p).startswith(f + os.sep) for f in foreign)]
        if user_site:
            problems.append('the user site-packages is enabled')
        for folder in site_packages:
            for name in sorted(os.listdir(folder)) if osp.isdir(folder) else []:
                if name.endswith('.pth'):
                    with open(osp.join(folder, name)) as f:
                        text = f.read()
                    problems += [f'{name} names {p}' for p in foreign if p in text]
        if problems:
            raise InstallError(f'{step}: the venv is not isolated: {"; ".join(problems)}')

    def upgrade_pip(self, spec: str) -> None:
        """Install ``spec`` (e.g. ``pip==25.3``) as the venv's pip before the user's commands (not counted in them)."""
        self.pip_step('upgrade_pip', ['--upgrade', spec, '--index-url', self.index_url])
        self.record['pip'] = self.run('upgrade_pip', [self.python, '-m', 'pip', '--version'],
                                      env=self.pip_env())[-1].split()[1]

    def install(self, wheel: str) -> None:
        """Steps 3 and 4: torch alone, then mmcv-lite and the wheel with everything else from the registry."""
        torch_args = [TORCH, '--index-url', self.index_url]
        if self.torch_find_links:
            torch_args += ['--find-links', self.torch_find_links]
        self.pip_step('install_torch', torch_args)
        torch_version = self.installed().get('torch')
        if torch_version is None or torch_version.split('+')[0] != TORCH.split('==')[1]:
            raise InstallError(f'install_torch: expected {TORCH}, the venv holds torch {torch_version}')
        constraint = osp.join(self.root, 'torch-constraint.txt')
        with open(constraint, 'w') as f:
            f.write(f'torch=={torch_version}\n')
        self.pip_step('install_ivnext', [MMCV, wheel, '--index-url', self.index_url, '--constraint', constraint])

    def installed(self) -> Dict[str, str]:
        """``name -> version`` of every distribution in the venv (pip's normalised names)."""
        lines = self.run('list', [self.python, '-m', 'pip', 'list', '--format=json'], env=self.pip_env())
        return {normalise(p['name']): p['version'] for p in json.loads(lines[-1])}

    def use(self) -> None:
        """Step 5: ``pip check`` and the checks of tools/check_installed_ivnext.py, from outside the repository."""
        use_dir = osp.join(self.root, 'use')
        os.makedirs(use_dir)
        if osp.realpath(use_dir).startswith(osp.realpath(REPO) + os.sep):
            raise InstallError(f'checks: {use_dir} is inside the repository; use a --work-dir outside it')
        checks: Dict[str, Dict] = {}
        self.record['checks'] = checks
        start = time.perf_counter()
        checks['pip_check'] = self.pip_check(use_dir)
        self.isolation_problems('checks', False, [], [self.site_packages])
        checker = osp.join(use_dir, osp.basename(CHECKER))
        shutil.copy2(CHECKER, checker)
        result_path = osp.join(use_dir, 'checks.json')
        try:
            self.run('checks', [self.python, checker, '--work-dir', osp.join(use_dir, 'work'), '--json', result_path],
                     env=self.venv_env(), cwd=use_dir)
        except InstallError:
            if not osp.isfile(result_path):
                raise
        finally:
            self.steps['checks']['seconds'] = round(time.perf_counter() - start, 2)
        with open(result_path) as f:
            result = json.load(f)
        checks.update(result['checks'])
        self.record['checker'] = dict(python=result['python'], prefix=result['prefix'], versions=result['versions'])

    def pip_check(self, cwd: str) -> Dict:
        """``pip check``: every requirement of every installed distribution is met.

        Newer pip (26.3) also reports wheels whose recorded tag does not fit the platform (decord 0.6.0's
        ``WHEEL`` file says ``cp36-cp36m`` under a ``py3-none`` file name); pip chose those files for this
        platform, so such lines are kept as notes, and only unmet or conflicting requirements fail the check.
        """
        try:
            output = self.run('checks', [self.python, '-m', 'pip', 'check'], env=self.pip_env(), cwd=cwd)
            return dict(passed=True, details=dict(output=output))
        except InstallError as err:
            if not err.lines:
                raise
            notes = [line for line in err.lines if line.endswith('is not supported on this platform')]
            problems = [line for line in err.lines if line.strip() and line not in notes]
            if problems:
                return dict(passed=False, error='pip check: ' + '; '.join(problems))
            self.steps['checks'].pop('error', None)
            return dict(passed=True, details=dict(output=err.lines, platform_notes=notes))

    def execute(self, python: str, pip: Optional[str] = None) -> Dict:
        """All steps; the record (also when a step fails: then ``error`` names it).

        Args:
            python: Interpreter that creates the venv.
            pip: pip requirement installed into the venv before the user's commands; None keeps the venv's own.
        """
        start = time.perf_counter()
        try:
            wheel = self.build_wheel()
            self.create_venv(python)
            if pip:
                self.upgrade_pip(pip)
            self.install(wheel)
            packages = self.installed()
            self.record['packages'] = packages
            self.record['versions'] = {name: packages.get(name) for name in SUMMARY_PACKAGES}
            self.use()
        except InstallError as err:
            self.record['error'] = str(err)
        pip_steps = [self.steps[s] for s in ('install_torch', 'install_ivnext') if s in self.steps]
        self.record['downloaded_mb'] = mb(sum(s.get('downloaded_bytes', 0) for s in pip_steps))
        self.record['cache_growth_mb'] = round(sum(s.get('cache_growth_mb', 0) for s in pip_steps), 1)
        self.record['backtracking'] = any(s.get('backtracking', False) for s in pip_steps)
        self.record['total_seconds'] = round(time.perf_counter() - start, 2)
        self.record['user_install_seconds'] = round(sum(s['seconds'] for s in pip_steps), 2)
        checks = self.record.get('checks', {})
        self.record['passed'] = 'error' not in self.record and bool(checks) and all(
            c['passed'] for c in checks.values())
        return self.record


def summary_lines(record: Dict) -> List[str]:
    """The printed summary of a run's record."""
    lines = [f"clean install of {record.get('wheel', 'ivnext')} into a fresh venv (Python "
             f"{record.get('python', '?')}, pip {record.get('pip', '?')}), pip cache {record['cache']}, "
             f"index {record['index_url']}"]
    for name, step in record['steps'].items():
        if name == 'list':
            continue
        line = f'  {name:15s} {step["seconds"]:7.1f} s'
        if 'downloaded_mb' in step:
            line += f'  {step["downloaded_mb"]:7.1f} MB downloaded in {step["downloads"]} files'
            if step['cached']:
                line += f', {mb(step["cached_bytes"])} MB from the cache'
            local = sum(f['bytes'] for f in step['local_files'])
            if local:
                line += f', {mb(local)} MB from local files'
            line += f', backtracking: {"yes" if step["backtracking"] else "no"}'
        lines.append(line)
    lines.append(f"  user install (install_torch + install_ivnext) {record['user_install_seconds']:.1f} s, "
                 f"{record['downloaded_mb']} MB downloaded, backtracking: {'yes' if record['backtracking'] else 'no'}"
                 f"; all steps {record['total_seconds']:.1f} s")
    if record['downloaded_mb'] and not record['cache_growth_mb']:
        lines.append("  pip's HTTP cache stayed empty (the registry's responses carry no caching headers here): "
                     'the download sizes are those pip printed, and a warm cache saves nothing')
    elif record['downloaded_mb']:
        lines.append(f"  pip's HTTP cache grew by {record['cache_growth_mb']} MB (package files and index pages)")
    if record.get('versions'):
        lines.append('  resolved: ' + ', '.join(f'{k} {v}' for k, v in record['versions'].items() if v)
                     + f" ({len(record['packages'])} distributions; not installed: "
                     + (', '.join(k for k, v in record['versions'].items() if not v) or 'none') + ')')
    for name, check in record.get('checks', {}).items():
        status = 'passed' if check['passed'] else f"FAILED: {check['error'].splitlines()[0]}"
        notes = check.get('details', {}).get('platform_notes') if check['passed'] else None
        lines.append(f'  check {name:22s} {status}' + (f" ({'; '.join(notes)})" if notes else ''))
    lines.append('PASSED' if record['passed'] else f"FAILED: {record.get('error', 'a check failed').splitlines()[0]}")
    return lines


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--json', default=None, help='write the record of the run to this JSON file')
    parser.add_argument('--work-dir', default=None,
                        help='empty or new folder for the run, kept afterwards (default: a temporary folder, '
                        'removed after a passing run)')
    parser.add_argument('--keep', action='store_true', help='keep the temporary folder after a passing run')
    parser.add_argument('--cache-dir', default=None,
                        help="pip cache to use and keep (default: a fresh, empty one: the cold numbers)")
    parser.add_argument('--index-url', default=PYPI, help=f'registry to install from (default {PYPI})')
    parser.add_argument('--torch-find-links', default=os.environ.get('PIP_FIND_LINKS') or None,
                        help='folder or URL step 3 may also take torch from (default: $PIP_FIND_LINKS)')
    parser.add_argument('--python', default=sys.executable,
                        help='interpreter that creates the venv (default: this one; a venv uses its base Python)')
    parser.add_argument('--pip', default=None,
                        help="pip to install into the venv first, e.g. 'pip==25.3' (default: the venv's own, "
                        'from ensurepip)')
    parser.add_argument('--allow-cuda-download', action='store_true',
                        help='let pip download torch, triton and nvidia-* wheels (gigabytes)')
    parser.add_argument('--step-timeout', type=float, default=1800.0, help='seconds one command may run')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Run every step, print the summary; 0 when everything passed, 1 otherwise."""
    args = parse_args(argv)
    if args.work_dir:
        root = osp.abspath(args.work_dir)
        if osp.exists(root) and os.listdir(root):
            print(f'check_clean_install: error: --work-dir {root} is not empty', file=sys.stderr)
            return 1
        os.makedirs(root, exist_ok=True)
    else:
        root = tempfile.mkdtemp(prefix='ivnext-clean-install-')
    run = CleanInstall(root, args.cache_dir, args.index_url, args.torch_find_links, args.allow_cuda_download,
                       args.step_timeout)
    record = run.execute(args.python, args.pip)
    print('\n'.join(summary_lines(record)))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(record, f, indent=2)
    if not record['passed']:
        print(f"check_clean_install: error: {record.get('error', 'a check failed')}\n(venv, logs and check "
              f'outputs kept in {root})', file=sys.stderr)
        return 1
    if not (args.work_dir or args.keep):
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())

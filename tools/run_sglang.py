"""Runs the real SGLang command-line programs of the pinned release on a machine without
a GPU stack, for sota-bot's tests.

SGLang's benchmark client and server argument parser are plain Python, but importing
them pulls in GPU-only packages (torch, triton, kernels). This runner puts light
stand-ins in their place (any attribute, call or base class of a stand-in is another
stand-in; no accelerator is reported present) and skips the package initialisers that
only set up the GPU runtime. Everything it runs is SGLang's own code.

usage:
  run_sglang.py bench ARGS...         python -m sglang.bench_serving ARGS (the real client)
  run_sglang.py bench-parse ARGS...   parse ARGS with the client's real parser, print them
  run_sglang.py server-help           python -m sglang.launch_server --help
  run_sglang.py server-parse ARGS...  parse ARGS with the server's real parser, print them
  run_sglang.py version               the installed SGLang version
"""

import argparse
import ast
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import types

# GPU-only packages SGLang imports at module level.
STANDIN_PACKAGES = {
    "torch", "triton", "sgl_kernel", "flashinfer", "vllm", "cuda", "nvidia",
    "triton_kernels", "deep_gemm", "torchvision", "torchaudio", "decord",
    "xgrammar", "outlines", "llguidance", "torch_memory_saver", "numba",
}
# Dataset-download library SGLang's client imports for datasets other than the synthetic
# ones a campaign uses (it is never called for `random-ids`).
DOWNLOAD_ONLY_PACKAGES = {"datasets"}
# Accelerator back-ends a stand-in must not pretend to have.
ABSENT = {"npu", "hpu", "xpu", "musa", "mlu", "sail"}


class StandIn:
    """Any attribute, call, index or base-class use yields another stand-in."""

    def __init__(self, name="standin"):
        object.__setattr__(self, "_name", name)

    def __getattr__(self, item):
        if (item.startswith("__") and item.endswith("__")) or item in ABSENT:
            raise AttributeError(item)
        return StandIn(f"{self._name}.{item}")

    def __call__(self, *args, **kwargs):
        # Used as a decorator: give the function back unchanged.
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        return StandIn(f"{self._name}()")

    def __getitem__(self, item):
        return StandIn(f"{self._name}[]")

    def __mro_entries__(self, bases):
        return (type(self._name.rsplit(".", 1)[-1], (), {}),)

    def __iter__(self):
        return iter(())

    def __or__(self, other):
        return self

    __ror__ = __or__

    def __bool__(self):
        return False

    def __eq__(self, other):
        return self is other

    def __hash__(self):
        return id(self)

    def __lt__(self, other):
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def __int__(self):
        return 0

    __index__ = __int__

    def __float__(self):
        return 0.0

    def __len__(self):
        return 0

    def __contains__(self, item):
        return False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __repr__(self):
        return f"<stand-in {self._name}>"


class StandInModule(types.ModuleType):
    def __getattr__(self, item):
        if (item.startswith("__") and item.endswith("__")) or item in ABSENT:
            raise AttributeError(item)
        return StandIn(f"{self.__name__}.{item}")


class StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, packages=STANDIN_PACKAGES):
        self.packages = packages

    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in self.packages:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = StandInModule(spec.name)
        module.__path__ = []
        module.__version__ = "0.0+standin"
        return module

    def exec_module(self, module):
        pass


def sglang_root():
    spec = importlib.util.find_spec("sglang")
    if spec is None or spec.origin is None:
        sys.exit("run_sglang.py: SGLang is not installed in this Python")
    return os.path.dirname(spec.origin)


def bare_packages(root, names):
    """Registers packages without running their __init__ (which sets up the GPU runtime)."""
    for name in names:
        module = types.ModuleType(name)
        module.__path__ = [os.path.join(root, *name.split(".")[1:])]
        sys.modules[name] = module


def module_constants(path, names):
    """Literal constants assigned at the top of a source file, read without importing it."""
    with open(path) as f:
        tree = ast.parse(f.read())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in names:
                found[target.id] = ast.literal_eval(node.value)
    return found


def load_client():
    root = sglang_root()
    sys.meta_path.insert(0, StandInFinder(DOWNLOAD_ONLY_PACKAGES))
    bare_packages(root, ["sglang", "sglang.srt", "sglang.srt.utils", "sglang.srt.disaggregation"])
    # The client needs one constant of this GPU-side module; it is read from SGLang's source.
    disagg = types.ModuleType("sglang.srt.disaggregation.utils")
    disagg.__dict__.update(
        module_constants(os.path.join(root, "srt/disaggregation/utils.py"), {"FAKE_BOOTSTRAP_HOST"})
    )
    sys.modules["sglang.srt.disaggregation.utils"] = disagg
    import sglang.benchmark.serving as serving

    return serving


def server_parser():
    sys.meta_path.insert(0, StandInFinder())
    # With no accelerator, SGLang selects its CPU platform only when asked to.
    os.environ.setdefault("SGLANG_USE_CPU_ENGINE", "1")
    bare_packages(sglang_root(), ["sglang"])
    from sglang.srt.server_args import ServerArgs

    parser = argparse.ArgumentParser(prog="sglang serve")
    ServerArgs.add_cli_args(parser)
    return parser


def json_value(v):
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return str(v)
    return v


def print_namespace(ns):
    values = {k: json_value(v) for k, v in vars(ns).items()}
    print(json.dumps(values, default=str, sort_keys=True))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    command, args = sys.argv[1], sys.argv[2:]
    if command == "bench":
        serving = load_client()
        sys.argv = ["python -m sglang.bench_serving"] + args
        serving.cli_main()
    elif command == "bench-parse":
        serving = load_client()
        serving.run_benchmark = print_namespace
        sys.argv = ["python -m sglang.bench_serving"] + args
        serving.cli_main()
    elif command == "server-help":
        server_parser().print_help()
    elif command == "server-parse":
        print_namespace(server_parser().parse_args(args))
    elif command == "version":
        from importlib.metadata import version

        print(version("sglang"))
    else:
        sys.exit(f"run_sglang.py: unknown command {command!r}\n{__doc__}")


if __name__ == "__main__":
    main()

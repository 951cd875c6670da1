"""``stablegate_client.__all__`` is the public surface, and nothing public hides outside it.

Modelled on httpx's tests/test_exported_members.py, plus one step: every class and function that
the private modules define under a public-looking name is either exported or listed below as an
internal building block (with the reason), so adding a public thing means deciding which it is.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import stablegate_client

# Building blocks of flush and signing, used across the package's private modules but not part
# of the API merchants program against.
INTERNAL = {
    "_ethereum": {
        "Eip1559Transaction",
        "EthereumKey",
        "abi_word",
        "address_bytes",
        "bytes32",
        "checksum_address",
        "function_selector",
        "rlp_encode",
    },
    "_flush": {"token_decimals"},
    "_keccak": {"keccak256"},
    "_signing": {"load_p256_private_key", "load_p256_public_key"},
}


def test_all_is_exactly_the_public_names_of_the_package_sorted() -> None:
    modules = {"cli"}  # a submodule becomes an attribute once imported
    public = [
        name for name in vars(stablegate_client) if not name.startswith("_") and name not in modules
    ]
    public += ["__version__"]
    assert stablegate_client.__all__ == sorted(public)


def test_everything_in_all_exists_and_reports_the_package() -> None:
    for name in stablegate_client.__all__:
        member = getattr(stablegate_client, name)
        if inspect.isclass(member) or inspect.isfunction(member):
            assert member.__module__ == "stablegate_client", name


def test_private_modules_define_nothing_public_that_is_not_exported() -> None:
    exported = {id(getattr(stablegate_client, name)) for name in stablegate_client.__all__}
    for info in pkgutil.iter_modules(stablegate_client.__path__):
        if not info.name.startswith("_"):
            continue
        module = importlib.import_module(f"stablegate_client.{info.name}")
        allowed = INTERNAL.get(info.name, set())
        for name, member in vars(module).items():
            if name.startswith("_") or not (inspect.isclass(member) or inspect.isfunction(member)):
                continue
            if id(member) in exported or member.__module__ != module.__name__:
                continue  # exported, or imported from elsewhere
            assert name in allowed, (
                f"stablegate_client.{info.name}.{name} is public-looking: export it in __all__ "
                "or list it in INTERNAL"
            )
        for name in allowed:
            assert hasattr(module, name), f"INTERNAL lists {info.name}.{name}, which is gone"


def test_the_console_script_module_exposes_main() -> None:
    from stablegate_client import cli

    assert callable(cli.main)

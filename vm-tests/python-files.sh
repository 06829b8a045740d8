# shellcheck shell=bash
# Sourced by vm-tests/ipvs-sync and vm-tests/anycast-ipvs: `python_files TMPDIR` sets
# PY_FILES to the vm-tests/run --file options that give the guest the host's
# /usr/bin/python3 with the part of its standard library asyncio and json need (no
# site-packages), enough for scripts/lab/conntrack/flows.py.
python_files() {
    local py lib dynload m f
    py=$(readlink -f /usr/bin/python3 2>/dev/null || true)
    [ -x "$py" ] || { echo "$(basename "$0"): no /usr/bin/python3" >&2; return 2; }
    lib=$("$py" -S -E -c 'import os; print(os.path.dirname(os.__file__))')
    dynload=$("$py" -S -E -c 'import _json, os; print(os.path.dirname(_json.__file__))' 2>/dev/null || true)
    # The pure-Python standard library, without what flows.py cannot use, and the few
    # extension modules asyncio and json load (the rest are built into Debian's python).
    mkdir -p "$1/pylib"
    tar -C "$lib" --exclude=__pycache__ --exclude=test --exclude=tests --exclude=idlelib \
        --exclude=tkinter --exclude=lib2to3 --exclude=ensurepip --exclude=pydoc_data \
        --exclude='config-*' --exclude=distutils --exclude=lib-dynload --exclude=site-packages \
        --exclude=dist-packages -cf - . | tar -C "$1/pylib" -xf -
    PY_FILES=(--file "$py:/usr/bin/python3" --file "$1/pylib:$lib")
    if [ -n "$dynload" ] && [ "$dynload" != "$lib" ]; then
        mkdir -p "$1/dyn"
        for m in _asyncio _contextvars _json _typing select _socket math; do
            for f in "$dynload/$m".*so; do [ -e "$f" ] && cp "$f" "$1/dyn/"; done
        done
        for f in "$1"/dyn/*.so; do
            [ -e "$f" ] && PY_FILES+=(--file "$f:$dynload/$(basename "$f")")
        done
    fi
    return 0
}

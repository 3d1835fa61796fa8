"""Exception texts made safe to log, to put in an Event or in status.

An HTTP library's exception text names a URL at most, never the headers (so never a token or a
signature), but the URL of a proxy may carry a password. Both HTTP clients of the operator (the
apiserver's and EMR's) describe their failures with ``exception_text``, so the cut is made once.
"""

from __future__ import annotations

import re

#: "scheme://user:password@" in a URL quoted by an exception's text.
_USERINFO = re.compile(r"//[^/@\s'\"]*@")


def exception_text(exc: BaseException, *, empty: str = "") -> str:
    """``TypeName: text`` with any URL's user info cut out; ``empty`` stands for a text-less one."""
    try:
        text = _USERINFO.sub("//", str(exc))
    except Exception:  # a half-built exception whose __str__ fails: its type still says enough
        text = ""
    text = text or empty
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

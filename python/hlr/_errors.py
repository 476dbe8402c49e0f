"""HlrError and the two ways a C call reports failure."""

from . import _capi


class HlrError(Exception):
    """A libhlr call failed.

    `code` is the negative hlr_status (compare it with hlr.EINVAL, hlr.ESHAPE,
    ...), `message` the library's own words (hlr_last_error()), and `name`
    the code's name (hlr_strerror()).
    """

    def __init__(self, code, message):
        self.code = int(code)
        self.message = message
        super().__init__(self.code, message)

    @property
    def name(self):
        return strerror(self.code)

    def __str__(self):
        return "%s [%s]" % (self.message, self.name)


def strerror(code):
    """The name libhlr gives a status code, e.g. 'invalid argument'."""
    return _capi.lib.hlr_strerror(int(code)).decode("utf-8", "replace")


def last_error():
    """This thread's last libhlr error message."""
    return _capi.lib.hlr_last_error().decode("utf-8", "replace")


def _in_callers_terms(message, where):
    """"hlr_model_fit: batch_size 0 ..." -> "fit: batch_size 0 ..." when where is given."""
    if where and message.startswith("hlr_"):
        head, sep, rest = message.partition(": ")
        if sep and " " not in head:
            return "%s: %s" % (where, rest)
    return message


def check(status, where=None):
    """Raise HlrError for a negative status; return it otherwise.  where: the
    Python method the caller called ("fit"), put in place of the C function's
    name at the start of the library's message."""
    if status < 0:
        raise HlrError(status, _in_callers_terms(last_error(), where))
    return status


def check_ptr(ptr):
    """Raise HlrError (code from hlr_last_status()) for a NULL constructor result."""
    if not ptr:
        code = _capi.lib.hlr_last_status()
        raise HlrError(code if code < 0 else _capi.HLR_EINVAL, last_error())
    return ptr

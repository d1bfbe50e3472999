# Cython declarations for book.py (see reference_impl/core_build.py): compiled,
# Order, Half and Book become extension types whose attributes are struct
# slots, so the hot loops read them without a dictionary or descriptor lookup.
# Values stay Python objects (typed C integers measured no faster: every one
# is boxed again for an output). Level stays a Python deque subclass.
import cython

cdef class Order:
    cdef public object account, token, qty, open, canceled, order_ref, level

cdef class Half:
    cdef public object is_buy, book
    cdef public list keys
    cdef public dict levels

cdef class Book:
    cdef public object symbol, tick
    cdef public Half bids, asks
    cdef public dict _live
    @cython.locals(o=Order, half=Half)
    cpdef tuple match(self, object is_buy, object limit_key, object remaining, object account,
                      object token, object seq, list out, object match_id)

# order stays untyped: a typed argument would take None without a check
@cython.locals(half=Half)
cpdef remove(order)

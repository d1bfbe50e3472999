# Cython declarations for engine.py (see reference_impl/core_build.py): the
# engine is an extension type and its handlers are C-callable methods that
# know the types of the book objects they touch.
import cython
from .book cimport Book, Half, Order

cdef class Engine:
    cdef public object instruments, last_applied_seq, epoch, last_order_ref, last_match_id
    cdef public dict _books, _used, _live, _dispatch
    cpdef list apply(self, object msg)
    @cython.locals(book=Book, half=Half, order=Order, used=set)
    cpdef list _on_new_order(self, object seq, object account, object body)
    @cython.locals(order=Order, mine=dict)
    cpdef list _on_cancel(self, object seq, object account, object body)
    @cython.locals(old=Order, book=Book, half=Half, mine=dict, used=set)
    cpdef list _on_replace(self, object seq, object account, object body)

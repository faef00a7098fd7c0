# 1×1 kernels, stride 1, no padding: the column matrix is the image, so im2col and col2im are
# copies.
#
# The fast twin of im2col/reference.py's im2col (and col2im) for kh = kw = 1, where its loop puts
# x[:, c, h, w] at row c, column h·W + w: the same bytes in the same order.


def copy_bytes(const uint8_t[::1] src, uint8_t[::1] dst, int n_threads):
    """``dst[:] = src``, in one contiguous block per thread.

    im2col and col2im with a 1×1 kernel, stride 1 and no padding (any dilation) move each element
    once, to the same place: (N, C, H, W) and (N, C·1·1, H·W) are the same bytes. With a fresh
    output most of the time goes to first-touch page faults, which two threads take in parallel.
    """
    cdef Py_ssize_t n = src.shape[0], block, lo, hi, t
    if n == 0:
        return
    block = (n + n_threads - 1) // n_threads
    block = (block + 4095) // 4096 * 4096                 # whole pages per thread
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            lo = t * block
            hi = lo + block
            if hi > n:
                hi = n
            if lo < hi:
                memcpy(&dst[lo], &src[lo], hi - lo)


cdef extern from "_stream_copy.h":
    void im2col_stream_copy(void* dst, const void* src, size_t n) noexcept nogil


def stream_copy_bytes(const uint8_t[::1] src, uint8_t[::1] dst, int n_threads):
    """:func:`copy_bytes` with streaming stores (``csrc/_stream_copy.h``), for large copies."""
    cdef Py_ssize_t n = src.shape[0], block, lo, hi, t
    if n == 0:
        return
    block = (n + n_threads - 1) // n_threads
    block = (block + 4095) // 4096 * 4096
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            lo = t * block
            hi = lo + block
            if hi > n:
                hi = n
            if lo < hi:
                im2col_stream_copy(&dst[lo], &src[lo], hi - lo)

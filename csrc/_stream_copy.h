/* A large copy whose destination will not be read again soon: non-temporal (streaming) stores.
 *
 * A plain store first reads the destination's cache line (read-for-ownership), so a copy moves
 * three streams through memory; a streaming store writes the line without reading it. SSE2 is in
 * every x86-64 CPU; elsewhere this is memcpy. Only worth it for copies far larger than the cache:
 * the data is not left in it for the next reader. */
#ifndef IM2COL_STREAM_COPY_H
#define IM2COL_STREAM_COPY_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
static inline void im2col_stream_copy(void *dst, const void *src, size_t n) {
    char *d = (char *)dst;
    const char *s = (const char *)src;
    size_t head = (16 - ((uintptr_t)d & 15)) & 15;
    if (head > n)
        head = n;
    memcpy(d, s, head);
    d += head; s += head; n -= head;
    for (; n >= 64; n -= 64, d += 64, s += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)s);
        __m128i b = _mm_loadu_si128((const __m128i *)(s + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(s + 32));
        __m128i e = _mm_loadu_si128((const __m128i *)(s + 48));
        _mm_stream_si128((__m128i *)d, a);
        _mm_stream_si128((__m128i *)(d + 16), b);
        _mm_stream_si128((__m128i *)(d + 32), c);
        _mm_stream_si128((__m128i *)(d + 48), e);
    }
    memcpy(d, s, n);
    _mm_sfence(); /* streaming stores are weakly ordered: make them visible before returning */
}
#define IM2COL_HAVE_STREAM_COPY 1
#else
static inline void im2col_stream_copy(void *dst, const void *src, size_t n) { memcpy(dst, src, n); }
#define IM2COL_HAVE_STREAM_COPY 0
#endif
#endif

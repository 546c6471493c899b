/*
 * Line building and the few library routines the compiler may call.
 * Used from both rings; nothing here touches I/O.
 */
#include "kernel.h"

void line_reset(struct line *l)
{
    l->len = 0;
}

static void line_putc(struct line *l, char c)
{
    /* Keep one byte for the newline that line_end() adds. */
    if (l->len < sizeof(l->buf) - 1) {
        l->buf[l->len++] = c;
    }
}

void line_str(struct line *l, const char *s)
{
    while (*s) {
        line_putc(l, *s++);
    }
}

void line_u64(struct line *l, u64 v)
{
    char digits[20];
    int n = 0;

    do {
        digits[n++] = '0' + v % 10;
        v /= 10;
    } while (v);
    while (n) {
        line_putc(l, digits[--n]);
    }
}

static void line_hex_digits(struct line *l, u64 v, int ndigits)
{
    static const char hex[] = "0123456789abcdef";

    for (int shift = (ndigits - 1) * 4; shift >= 0; shift -= 4) {
        line_putc(l, hex[(v >> shift) & 0xf]);
    }
}

/* Fixed width: the boot token is always 16 digits. */
void line_hex16(struct line *l, u64 v)
{
    line_hex_digits(l, v, 16);
}

void line_hex(struct line *l, u64 v)
{
    int ndigits = 1;

    while (ndigits < 16 && (v >> (ndigits * 4))) {
        ndigits++;
    }
    line_str(l, "0x");
    line_hex_digits(l, v, ndigits);
}

void line_end(struct line *l)
{
    l->buf[l->len++] = '\n';
}

/* A 64-bit finaliser (xor-shift-multiply); only needs to scatter bits. */
u64 mix64(u64 x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/*
 * String instructions rather than C loops: the compiler would turn a C loop
 * here back into a call to the function being defined.
 */
void *memset(void *dst, int c, size_t n)
{
    void *d = dst;

    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
    void *d = dst;

    __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const u8 *x = a;
    const u8 *y = b;

    for (size_t i = 0; i < n; i++) {
        if (x[i] != y[i]) {
            return x[i] < y[i] ? -1 : 1;
        }
    }
    return 0;
}

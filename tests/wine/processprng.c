/*
 * Test-only stand-in for Windows' bcryptprimitives.dll, for running knock.exe under
 * Debian 12's Wine 8, which has no such DLL. Rust's standard library imports
 * ProcessPrng from it (Windows 10 and later); here it forwards to RtlGenRandom
 * (advapi32's SystemFunction036), which Wine has. Built with mingw by the end-to-end
 * tests and placed beside knock.exe; never shipped.
 */
#include <windows.h>

/* RtlGenRandom; ntsecapi.h only declares it behind a macro. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Fills data with len random bytes. Windows documents that it always returns TRUE;
 * this one returns FALSE if RtlGenRandom fails, which std treats as fatal. */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* RtlGenRandom takes a 32-bit length, ProcessPrng a pointer-sized one. */
    const SIZE_T max_chunk = 0x10000000;
    while (len > 0) {
        ULONG chunk = (ULONG)(len > max_chunk ? max_chunk : len);
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
